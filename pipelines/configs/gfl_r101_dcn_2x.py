# GFocalV1 R-101-DCN, 2x: the paper's R-101-DCN teacher.
_base_ = ['./_base_/backbones/r101_dcn.py', './_base_/schedules/gfl_mstrain_2x.py']
