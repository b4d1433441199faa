# LD student: GFocalV2 R-101-DCN under the LD recipe of ../ld_v2.py (the model becomes the distiller,
# the head its LD head). A row names the teacher and may turn more terms on.
_base_ = ['../backbones/r101_dcn.py', '../ld_v2.py']
model = {{_base_.distiller}}
