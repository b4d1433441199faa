# RetinaNet R-18 (general-distribution boxes), 1x: the baseline of the LD students of this detector.
_base_ = ['./_base_/detectors/retina_r18.py', './_base_/schedules/1x.py']
# Each edge starts at 1.5 strides, not uniform at 8 (upstream): from uniform starts RetinaNet learns no boxes at the
# small profiles (ld.models.distribution_heads.DistributionBoxMixin; README "differs from upstream").
model = dict(bbox_head=dict(box_prior=1.5))
