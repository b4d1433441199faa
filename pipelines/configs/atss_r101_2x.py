# ATSS R-101 (general-distribution boxes), 2x multi-scale: upstream's ATSS teacher (HikariTJU/LD
# configs/gfl/atss_gfl_r101_2x.py: 1333 x [480, 800], steps [16, 22]).
_base_ = ['./_base_/detectors/atss_r101.py', './_base_/schedules/gfl_mstrain_2x.py']
