# Full LD (Main LD + VLR LD + Main KD): GFocalV1 R-18 student, 1x, from the GFocalV1 R-50 2x teacher.
_base_ = './ld_vlr_r18_gfl_r50_1x.py'
model = dict(bbox_head=dict(kd_main=dict(enabled=True)))
