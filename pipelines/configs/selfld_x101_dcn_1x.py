# Self-LD: GFocalV1 X-101-32x4d-DCN, 1x, distilled from a trained X-101-32x4d-DCN.
_base_ = ['./gfl_x101_dcn_1x.py', './_base_/ld.py']
teacher = 'gfl_x101_dcn_1x'
model = {{_base_.distiller}}
