# Self-LD: GFocalV2 Res2Net-101-DCN, 2x, distilled from a trained Res2Net-101-DCN.
_base_ = ['./_base_/students/gflv2_r2_101_dcn.py', './_base_/schedules/gflv2_ms2x.py']
teacher = 'gflv2_r2_101_dcn_2x'
