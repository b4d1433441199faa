# GFocalV2 (DGQP) R-18, 1x: the GFocalV2 baseline student.
_base_ = './gfl_r18_1x.py'
model = dict(bbox_head=dict(type='GFLv2Head'))
