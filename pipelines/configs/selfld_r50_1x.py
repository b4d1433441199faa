# Self-LD: GFocalV1 R-50, 1x, distilled from a trained GFocalV1 R-50 1x.
_base_ = './ld_r50_gfl_r101_1x.py'
teacher = 'gfl_r50_1x'
