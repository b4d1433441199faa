# RetinaNet R-18 (general-distribution boxes), 1x: the baseline of the LD students of this detector.
_base_ = ['./_base_/detectors/retina_r18.py', './_base_/schedules/1x.py']
# For the small profiles, from scratch (README "differs from upstream"): each edge starts at 1.5 strides, not
# uniform at 8 (from uniform starts RetinaNet learns no boxes: ld.models.distribution_heads.DistributionBoxMixin),
# and gradients are clipped at norm 35 (the LD student's, at upstream's weights, diverged at mini's epoch 4).
model = dict(bbox_head=dict(box_prior=1.5))
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
