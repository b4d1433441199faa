# Self-LD: GFocalV1 R-18 student, 1x, distilled from an already trained GFocalV1 R-18 (itself).
_base_ = './ld_r18_gfl_r50_1x.py'
teacher = 'gfl_r18_1x'
