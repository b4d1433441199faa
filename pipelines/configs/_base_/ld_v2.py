# The LD recipe for GFocalV2 students: the same terms on a DGQP head.
_base_ = './ld.py'
distiller = dict(bbox_head=dict(type='LDGFLv2Head'))
