# GFocalV1 R-101, 1x: the R-101 baseline row of the VOC table (4 epochs there); not the VOC teacher,
# which is gfl_r101_2x trained with the voc profile's teacher schedule.
_base_ = ['./_base_/backbones/r101.py', './_base_/schedules/1x.py']
