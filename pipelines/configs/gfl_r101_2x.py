# GFocalV1 R-101, 2x: the paper's R-101 teacher (and the R-101 2x baseline row).
_base_ = './gfl_r50_2x.py'
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
