# Main LD: GFocalV1 R-18 student, 1x, distilled from the GFocalV1 R-50 2x teacher.
_base_ = ['./_base_/students/gfl_r18.py', './_base_/schedules/1x.py']
teacher = 'gfl_r50_2x'
