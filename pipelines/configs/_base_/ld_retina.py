# The LD recipe for RetinaNet students (HikariTJU/LD configs/ld/ld_retina_r50_1x.py, ld_retina.py): Main LD
# (5, T=10), VLR LD without the positives at upstream's 0.03 x loss_ld's weight (divided by 4), KD (10, T=8).
_base_ = './ld.py'
distiller = dict(bbox_head=dict(type='LDRetinaGFLHead', ld_main=dict(loss_weight=5.0),
                                ld_vlr=dict(enabled=True, loss_weight=0.03 * 5.0),
                                kd_main=dict(enabled=True, T=8)))
