# GFocalV1 R-50, 2x: the teacher of the first slice.
_base_ = './_base_/gfl_synth.py'
schedule = '2x'
