# Main LD: GFocalV1 R-34 student, 1x, from the R-101-DCN teacher (VOC table).
_base_ = './ld_r34_gfl_r50_1x.py'
teacher = 'gfl_r101_dcn_2x'
