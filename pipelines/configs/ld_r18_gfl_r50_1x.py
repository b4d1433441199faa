# Main LD: GFocalV1 R-18 student, 1x, distilled from the GFocalV1 R-50 2x teacher.
_base_ = ['./gfl_r18_1x.py', './_base_/ld.py']
teacher = 'gfl_r50_2x'
model = {{_base_.distiller}}
