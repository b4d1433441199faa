# GFocalV2 R-101, 2x.
_base_ = ['./_base_/backbones/r101.py', './_base_/schedules/gflv2_ms2x.py']
model = dict(bbox_head=dict(type='GFLv2Head'))  # GFocalV2: the DGQP head
