# GFocalV1 X-101-32x4d-DCN, 1x: the Self-LD table's largest baseline (the paper trains it with batch 4).
_base_ = './gfl_r101_dcn_2x.py'
schedule = '1x'
model = dict(backbone=dict(type='ResNeXt', groups=32, base_width=4,
                           init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_32x4d')))
