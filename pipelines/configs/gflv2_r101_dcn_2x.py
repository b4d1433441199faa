# GFocalV2 R-101-DCN, 2x.
_base_ = './gfl_r101_dcn_2x.py'
model = dict(bbox_head=dict(type='GFLv2Head'))
