# GFocalV2 R-101, 2x.
_base_ = './gfl_r101_2x.py'
model = dict(bbox_head=dict(type='GFLv2Head'))
