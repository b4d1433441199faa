# RetinaNet R-50 (general-distribution boxes), 1x: the paper's baseline of this detector.
_base_ = ['./_base_/detectors/retina_r50.py', './_base_/schedules/1x.py']
