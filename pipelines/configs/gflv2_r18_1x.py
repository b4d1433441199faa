# GFocalV2 (DGQP) R-18, 1x: the GFocalV2 baseline student.
_base_ = ['./_base_/backbones/r18.py', './_base_/schedules/1x.py']
model = dict(bbox_head=dict(type='GFLv2Head'))  # GFocalV2: the DGQP head
