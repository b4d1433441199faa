# Main LD: GFocalV1 R-50 student, 1x, from the R-101 teacher.
_base_ = ['./gfl_r50_1x.py', './_base_/ld.py']
teacher = 'gfl_r101_2x'
model = {{_base_.distiller}}
