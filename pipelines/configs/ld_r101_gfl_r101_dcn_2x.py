# Main LD: GFocalV1 R-101 student, 2x, from the R-101-DCN teacher.
_base_ = ['./gfl_r101_2x.py', './_base_/ld.py']
teacher = 'gfl_r101_dcn_2x'
model = {{_base_.distiller}}
