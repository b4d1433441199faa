# GFocalV1 with an R-18 backbone (basic blocks: the FPN takes its narrower stages).
_base_ = '../gfl.py'
model = dict(
    backbone=dict(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
