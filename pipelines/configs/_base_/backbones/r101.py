# GFocalV1 with an R-101 backbone.
_base_ = '../gfl.py'
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
