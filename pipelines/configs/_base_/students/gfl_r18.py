# LD student: GFocalV1 R-18 under the LD recipe of ../ld.py (the model becomes the distiller,
# the head its LD head). A row names the teacher and may turn more terms on.
_base_ = ['../backbones/r18.py', '../ld.py']
model = {{_base_.distiller}}
