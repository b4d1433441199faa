# GFocalV1 R-50, 1x: the R-50 baseline student.
_base_ = ['./_base_/gfl.py', './_base_/schedules/1x.py']
