# Main LD: GFocalV2 X-101-32x4d-DCN student, 2x, from the GFocalV2 Res2Net-101-DCN teacher.
_base_ = ['./_base_/students/gflv2_x101_dcn.py', './_base_/schedules/gflv2_ms2x.py']
teacher = 'gflv2_r2_101_dcn_2x'
