# GFocalV1 R-101-DCN, 2x: the paper's R-101-DCN teacher.
_base_ = ['./gfl_r101_2x.py', './_base_/dcn.py']
model = dict(backbone={{_base_.dcn_backbone}})
