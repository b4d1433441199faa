# Feature imitation alone ('inside_gt' region, ld.ops.imitation; upstream's loss_im weight 2.0): GFocalV1 R-50
# student, 1x, from the R-101 teacher; no LD term (the paper's "Logit Mimicking vs. Feature Imitation" rows).
_base_ = ['./_base_/students/gfl_r50.py', './_base_/schedules/1x.py']
teacher = 'gfl_r101_2x'
model = dict(bbox_head=dict(ld_main=dict(enabled=False),
                            imitation=dict(enabled=True, loss_weight=2.0, method='inside_gt')))
