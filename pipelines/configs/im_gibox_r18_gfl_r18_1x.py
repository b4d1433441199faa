# GI feature imitation alone from the weakest teacher, the baseline R-18 itself (as Self-LD; the teacher-strength
# figure beside im_gibox_r18_gfl_r50_1x.py): GFocalV1 R-18 student, 1x; weight 0.5 as there.
_base_ = ['./_base_/students/gfl_r18.py', './_base_/schedules/1x.py']
teacher = 'gfl_r18_1x'
model = dict(bbox_head=dict(ld_main=dict(enabled=False),
                            imitation=dict(enabled=True, loss_weight=0.5, method='gibox')))
