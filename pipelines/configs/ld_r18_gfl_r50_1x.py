# LD: GFocalV1 R-18 student, 1x, distilled from the GFocalV1 R-50 2x teacher (main region,
# T=10, weight 0.25). The pipeline points teacher_config/teacher_ckpt at the trained teacher.
_base_ = './gfl_r18_1x.py'
teacher = 'gfl_r50_2x'
model = dict(
    type='KnowledgeDistillationSingleStageDetector',
    teacher_config='pipelines/configs/gfl_r50_2x.py',
    teacher_ckpt=None,
    bbox_head=dict(
        type='LDHead',
        loss_ld=dict(type='KnowledgeDistillationKLDivLoss', loss_weight=0.25, T=10)))
