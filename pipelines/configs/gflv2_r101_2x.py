# GFocalV2 R-101, 2x.
_base_ = './gfl_r101_2x.py'
model = dict(bbox_head=dict(type='GFLv2Head'))
# GFocalV2's ms2x recipe (implus/GFocalV2 configs/gfocal/gfocal_r50_fpn_ms2x.py): 1333 x [480, 960], 8 GPUs x 2
multiscale = (480, 960)
samples_per_gpu = 2
