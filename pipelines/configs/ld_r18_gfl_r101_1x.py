# Main LD: GFocalV1 R-18 student, 1x, from the R-101 teacher (COCO and VOC tables).
_base_ = './ld_r18_gfl_r50_1x.py'
teacher = 'gfl_r101_2x'
