# FCOS R-101 (general-distribution boxes), 2x multi-scale: upstream's FCOS teacher (HikariTJU/LD
# configs/gfl/fcos_gfl_r101_2x_center.py: short edge 640 or 800, steps [16, 22]; here a range 640-800).
_base_ = ['./_base_/detectors/fcos_r101.py', './_base_/schedules/gfl_mstrain_2x.py']
multiscale = (640, 800)
