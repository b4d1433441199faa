# RetinaNet R-101 (general-distribution boxes), 2x multi-scale: upstream's RetinaNet teacher (HikariTJU/LD
# configs/gfl/retinagfl_r101_2x_coco.py: 1333 x [480, 800], steps [16, 22]).
_base_ = ['./_base_/detectors/retina_r101.py', './_base_/schedules/gfl_mstrain_2x.py']
