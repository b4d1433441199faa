# Main LD: GFocalV2 R-101 student, 2x, from the GFocalV2 R-101-DCN teacher.
_base_ = ['./_base_/students/gflv2_r101.py', './_base_/schedules/gflv2_ms2x.py']
teacher = 'gflv2_r101_dcn_2x'
