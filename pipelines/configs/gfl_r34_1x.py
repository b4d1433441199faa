# GFocalV1 R-34, 1x.
_base_ = ['./_base_/backbones/r34.py', './_base_/schedules/1x.py']
