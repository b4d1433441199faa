# LD into RetinaNet from a GFocal teacher ("LD for arbitrary detectors"): RetinaNet R-18 student (general-
# distribution boxes), 1x, upstream's RetinaNet recipe (Main LD + VLR LD + KD), from the GFocalV1 R-50 2x teacher.
_base_ = ['./_base_/students/retina_r18.py', './_base_/schedules/1x.py']
teacher = 'gfl_r50_2x'
# as its baseline, retina_r18_1x.py: boxes start at 1.5 strides, gradients clipped at 35
model = dict(bbox_head=dict(box_prior=1.5))
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
