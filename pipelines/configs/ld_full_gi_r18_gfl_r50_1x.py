# Full LD + GI imitation ("Ours + GI"): GFocalV1 R-18 student, 1x, from the GFocalV1 R-50 2x teacher; the
# full LD terms plus feature imitation on General Instance locations. Weight 0.5, not upstream's 2.0
# (configs/ld/ld_r50_gflv1_r101_fpn_coco_1x.py, pretrained R-50 at lr 0.0025): from scratch at the CPU
# profiles' learning rates, 2.0 diverges (smoke: loss_im 38 -> 8e5 in 10 iterations; README "differs").
_base_ = ['./_base_/students/gfl_r18.py', './_base_/schedules/1x.py']
teacher = 'gfl_r50_2x'
model = dict(bbox_head=dict(ld_vlr=dict(enabled=True), kd_main=dict(enabled=True),
                            imitation=dict(enabled=True, loss_weight=0.5, method='gibox')))
