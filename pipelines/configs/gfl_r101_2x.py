# GFocalV1 R-101, 2x: the paper's R-101 teacher (and the R-101 2x baseline row).
_base_ = ['./_base_/backbones/r101.py', './_base_/schedules/gfl_mstrain_2x.py']
