# Self-LD: GFocalV1 X-101-32x4d-DCN, 1x, distilled from a trained X-101-32x4d-DCN.
_base_ = ['./_base_/students/gfl_x101_dcn.py', './_base_/schedules/1x.py']
teacher = 'gfl_x101_dcn_1x'
samples_per_gpu = 2  # the Self-LD table's mini-batch 4, as its baseline gfl_x101_dcn_1x
