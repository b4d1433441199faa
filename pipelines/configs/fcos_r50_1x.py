# FCOS R-50 (general-distribution boxes), 1x: the paper's baseline of this detector.
_base_ = ['./_base_/detectors/fcos_r50.py', './_base_/schedules/1x.py']
samples_per_gpu = 2  # upstream configs/ld/ld_r50_fcos_r101_1x.py: 2 per GPU at lr 0.01
