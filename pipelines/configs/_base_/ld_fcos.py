# The LD recipe for FCOS students (HikariTJU/LD configs/ld/ld_r50_fcos_r101_1x.py, ld_fcos_head.py): Main LD
# (0.25, T=10), VLR LD (inside a ground truth, not positive) at upstream's 0.25 x loss_ld's weight (divided by
# 4), KD (10, T=2).
_base_ = './ld.py'
distiller = dict(bbox_head=dict(type='LDFCOSGFLHead', ld_vlr=dict(enabled=True, loss_weight=0.25 * 0.25),
                                kd_main=dict(enabled=True)))
