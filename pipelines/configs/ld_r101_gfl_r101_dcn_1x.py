# Main LD: GFocalV1 R-101 student, 1x, from the R-101-DCN teacher (the VOC table's last row, 4 epochs).
_base_ = ['./_base_/students/gfl_r101.py', './_base_/schedules/1x.py']
teacher = 'gfl_r101_dcn_2x'
