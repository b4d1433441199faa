# GFocalV2 (DGQP) R-50, 2x: a GFocalV2 teacher.
_base_ = ['./_base_/gfl.py', './_base_/schedules/gflv2_ms2x.py']
model = dict(bbox_head=dict(type='GFLv2Head'))  # GFocalV2: the DGQP head
