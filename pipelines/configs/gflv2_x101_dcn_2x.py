# GFocalV2 X-101-32x4d-DCN, 2x.
_base_ = './gfl_x101_dcn_1x.py'
schedule = '2x'
model = dict(bbox_head=dict(type='GFLv2Head'))
