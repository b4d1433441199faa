# GFocalV1 X-101-32x4d-DCN, 1x: the Self-LD table's largest baseline (the paper trains it with batch 4).
_base_ = './gfl_r101_dcn_2x.py'
schedule = '1x'
multiscale = None
samples_per_gpu = 2  # the Self-LD table's mini-batch 4 (the LD README gives no layout: 2 GPUs x 2 here)
model = dict(backbone=dict(type='ResNeXt', groups=32, base_width=4, stage_with_dcn={{_base_.dcn_c4_c5}},
                           init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_32x4d')))
