# ATSS R-18 (general-distribution boxes), 1x: the baseline of the LD students of this detector.
_base_ = ['./_base_/detectors/atss_r18.py', './_base_/schedules/1x.py']
