# GFocalV1 with a Res2Net-101-DCN (26w x 4s) backbone: the R-101-DCN part as mmdet's Res2Net, DCN in c4-c5 (../dcn.py).
_base_ = ['./r101_dcn.py']
model = dict(backbone=dict(type='Res2Net', depth=101, scales=4, base_width=26, stage_with_dcn={{_base_.dcn_c4_c5}},
                           init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://res2net101_v1d_26w_4s')))
