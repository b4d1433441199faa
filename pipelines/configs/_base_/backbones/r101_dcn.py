# GFocalV1 with an R-101-DCN backbone: DCN in c3-c5 (see ../dcn.py).
_base_ = ['./r101.py', '../dcn.py']
model = dict(backbone={{_base_.dcn_backbone}})
