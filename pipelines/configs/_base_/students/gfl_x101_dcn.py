# LD student: GFocalV1 X-101-32x4d-DCN under the LD recipe of ../ld.py (the model becomes the distiller,
# the head its LD head). A row names the teacher and may turn more terms on.
_base_ = ['../backbones/x101_dcn.py', '../ld.py']
model = {{_base_.distiller}}
