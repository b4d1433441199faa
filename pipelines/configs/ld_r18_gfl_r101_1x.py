# Main LD: GFocalV1 R-18 student, 1x, from the R-101 teacher (COCO and VOC tables).
_base_ = ['./_base_/students/gfl_r18.py', './_base_/schedules/1x.py']
teacher = 'gfl_r101_2x'
