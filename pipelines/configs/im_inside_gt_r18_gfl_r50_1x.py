# Feature imitation alone ('inside_gt' region, ld.ops.imitation), the paper's thesis rows at the CPU profiles:
# GFocalV1 R-18 student, 1x, from the GFocalV1 R-50 2x teacher; no LD term. Weight 0.5, not upstream's 2.0, as
# ld_full_gi_r18_gfl_r50_1x.py (from scratch at these learning rates 2.0 diverges; README "differs").
_base_ = ['./_base_/students/gfl_r18.py', './_base_/schedules/1x.py']
teacher = 'gfl_r50_2x'
model = dict(bbox_head=dict(ld_main=dict(enabled=False),
                            imitation=dict(enabled=True, loss_weight=0.5, method='inside_gt')))
