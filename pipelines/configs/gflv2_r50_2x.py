# GFocalV2 (DGQP) R-50, 2x: a GFocalV2 teacher.
_base_ = './gfl_r50_2x.py'
model = dict(bbox_head=dict(type='GFLv2Head'))
