# GFocalV1 R-18, 1x: the baseline student.
_base_ = './_base_/gfl_synth.py'
model = dict(
    backbone=dict(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
