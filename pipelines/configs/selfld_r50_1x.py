# Self-LD: GFocalV1 R-50, 1x, distilled from a trained GFocalV1 R-50 1x.
_base_ = ['./_base_/students/gfl_r50.py', './_base_/schedules/1x.py']
teacher = 'gfl_r50_1x'
