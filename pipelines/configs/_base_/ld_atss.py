# The LD recipe for ATSS students (HikariTJU/LD configs/ld/ld_r50_atss_r101_1x.py, ld_atss.py): Main LD
# (0.25, T=10), VLR LD at upstream's 0.15 x loss_ld's weight (divided by 4, not 16), KD (10, T=2).
_base_ = './ld.py'
distiller = dict(bbox_head=dict(type='LDATSSGFLHead', ld_vlr=dict(enabled=True, loss_weight=0.15 * 0.25),
                                kd_main=dict(enabled=True)))
