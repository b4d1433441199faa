# GFocalV1 R-34, 1x.
_base_ = './gfl_r18_1x.py'
model = dict(backbone=dict(depth=34, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet34')))
