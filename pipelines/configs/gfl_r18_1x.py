# GFocalV1 R-18, 1x: the baseline student.
_base_ = ['./_base_/backbones/r18.py', './_base_/schedules/1x.py']
