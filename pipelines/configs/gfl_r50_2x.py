# GFocalV1 R-50, 2x (mmdet's multi-scale GFL recipe): the teacher of the first slice.
_base_ = ['./_base_/gfl.py', './_base_/schedules/gfl_mstrain_2x.py']
