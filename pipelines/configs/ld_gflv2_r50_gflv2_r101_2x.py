# Main LD: GFocalV2 R-50 student, 2x, from the GFocalV2 R-101 teacher.
_base_ = ['./_base_/students/gflv2_r50.py', './_base_/schedules/gflv2_ms2x.py']
teacher = 'gflv2_r101_2x'
