# GFocalV1 with an R-34 backbone (basic blocks, R-18's stage widths).
_base_ = '../gfl.py'
model = dict(
    backbone=dict(depth=34, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet34')),
    neck=dict(in_channels=[64, 128, 256, 512]))
