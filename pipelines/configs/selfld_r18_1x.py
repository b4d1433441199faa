# Self-LD: GFocalV1 R-18 student, 1x, distilled from an already trained GFocalV1 R-18 (itself).
_base_ = ['./_base_/students/gfl_r18.py', './_base_/schedules/1x.py']
teacher = 'gfl_r18_1x'
