# Main LD: GFocalV1 R-18 student, 1x, from the GFocalV2 R-50 2x teacher (edge distributions are
# what is distilled, so the heads may differ).
_base_ = ['./_base_/students/gfl_r18.py', './_base_/schedules/1x.py']
teacher = 'gflv2_r50_2x'
