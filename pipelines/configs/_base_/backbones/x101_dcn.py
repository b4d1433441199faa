# GFocalV1 with an X-101-32x4d-DCN backbone: the R-101-DCN part as ResNeXt-101 32x4d, DCN in c4-c5 (../dcn.py).
_base_ = ['./r101_dcn.py']
model = dict(backbone=dict(type='ResNeXt', groups=32, base_width=4, stage_with_dcn={{_base_.dcn_c4_c5}},
                           init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_32x4d')))
