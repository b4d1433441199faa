# Full LD (Main LD + VLR LD + Main KD): GFocalV1 R-50 student, 1x, from the R-101 teacher.
_base_ = './ld_r50_gfl_r101_1x.py'
model = dict(bbox_head=dict(ld_vlr=dict(enabled=True), kd_main=dict(enabled=True)))
