# Main LD: GFocalV1 R-101 student, 1x, from the R-101-DCN teacher (the VOC table's last row, 4 epochs).
_base_ = ['./gfl_r101_1x.py', './_base_/ld.py']
teacher = 'gfl_r101_dcn_2x'
model = {{_base_.distiller}}
