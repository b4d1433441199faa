# Full LD + GI imitation ("Ours + GI imitation", the upstream README's 42.4): GFocalV1 R-50 student, 1x, from the
# R-101 teacher; Main LD + VLR LD + Main KD and feature imitation on General Instance locations at upstream's
# loss_im weight 2.0 (configs/ld/ld_r50_gflv1_r101_fpn_coco_1x.py).
_base_ = ['./_base_/students/gfl_r50.py', './_base_/schedules/1x.py']
teacher = 'gfl_r101_2x'
model = dict(bbox_head=dict(ld_vlr=dict(enabled=True), kd_main=dict(enabled=True),
                            imitation=dict(enabled=True, loss_weight=2.0, method='gibox')))
