# Main LD: GFocalV2 R-18 student, 1x, from the GFocalV2 R-50 2x teacher.
_base_ = './ld_r18_gfl_r50_1x.py'
teacher = 'gflv2_r50_2x'
model = dict(bbox_head=dict(type='LDGFLv2Head'))
