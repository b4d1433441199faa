# Main LD: GFocalV1 R-34 student, 1x, from the R-101 teacher.
_base_ = ['./_base_/students/gfl_r34.py', './_base_/schedules/1x.py']
teacher = 'gfl_r101_2x'
