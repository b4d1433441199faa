# Main LD: GFocalV2 R-101 student, 2x, from the GFocalV2 R-101-DCN teacher.
_base_ = ['./gflv2_r101_2x.py', './_base_/ld_v2.py']
teacher = 'gflv2_r101_dcn_2x'
model = {{_base_.distiller}}
