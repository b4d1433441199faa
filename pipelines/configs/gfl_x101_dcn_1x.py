# GFocalV1 X-101-32x4d-DCN, 1x: the Self-LD table's largest baseline (the paper trains it with batch 4).
_base_ = ['./_base_/backbones/x101_dcn.py', './_base_/schedules/1x.py']
samples_per_gpu = 2  # the Self-LD table's mini-batch 4 (the LD README gives no layout: 2 GPUs x 2 here)
