# GFocalV2 Res2Net-101-DCN (26w x 4s), 2x: the GFocalV2 table's strongest teacher (mmdet's Res2Net).
_base_ = ['./_base_/backbones/r2_101_dcn.py', './_base_/schedules/gflv2_ms2x.py']
model = dict(bbox_head=dict(type='GFLv2Head'))  # GFocalV2: the DGQP head
