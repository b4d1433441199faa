# GFocalV2 Res2Net-101-DCN (26w x 4s), 2x: the GFocalV2 table's strongest teacher (mmdet's Res2Net).
_base_ = ['./gflv2_r101_dcn_2x.py']
model = dict(backbone=dict(type='Res2Net', depth=101, scales=4, base_width=26, stage_with_dcn={{_base_.dcn_c4_c5}},
                           init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://res2net101_v1d_26w_4s')))
