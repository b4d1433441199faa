# GFocalV2 X-101-32x4d-DCN, 2x.
_base_ = ['./_base_/backbones/x101_dcn.py', './_base_/schedules/gflv2_ms2x.py']
model = dict(bbox_head=dict(type='GFLv2Head'))  # GFocalV2: the DGQP head
