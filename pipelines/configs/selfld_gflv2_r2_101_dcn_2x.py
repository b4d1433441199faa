# Self-LD: GFocalV2 Res2Net-101-DCN, 2x, distilled from a trained Res2Net-101-DCN.
_base_ = ['./gflv2_r2_101_dcn_2x.py', './_base_/ld_v2.py']
teacher = 'gflv2_r2_101_dcn_2x'
model = {{_base_.distiller}}
