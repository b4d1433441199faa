# The LD recipe every distillation row starts from: the paper's "Main LD" (T=10, weight 0.25, on the
# ATSS positives). Each region is an explicit switch; rows turn the VLR term and classification KD on.
# Loss defaults follow the upstream LD configs (loss_ld 0.25/T10, loss_ld_vlr 0.25/T10, loss_kd 10/T2).
# The VLR is selected by upstream's overlap rule (`overlap='upstream'`, HikariTJU/LD atss_assigner.py
# get_vlr_region with bbox_overlaps(mode='diou')), which produced the paper's numbers; the textbook DIoU is
# the ablation row ld_vlr_diou_r18_gfl_r50_1x.
# students/ put a detector under it (`model = {{_base_.distiller}}`); the template `distiller` itself
# stays in the resolved config. `ld train --teacher <run>` fills in the teacher's config and checkpoint.
distiller = dict(
    type='LocalizationDistiller',
    teacher_config=None,
    teacher_ckpt=None,
    teacher_precision='auto',  # the teacher's forward: bfloat16 where the device has it natively, else fp32
    bbox_head=dict(
        type='LDGFLHead',
        ld_main=dict(enabled=True, loss_weight=0.25, T=10),
        ld_vlr=dict(enabled=False, loss_weight=0.25, T=10, alpha=0.25, overlap='upstream'),
        kd_main=dict(enabled=False, loss_weight=10.0, T=2),
        normalize='upstream'))
