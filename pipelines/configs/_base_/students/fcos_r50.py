# LD student: FCOS R-50 (general-distribution boxes) under the LD recipe of ../ld_fcos.py (the model
# becomes the distiller, the head its LD head). A row names the teacher.
_base_ = ['../detectors/fcos_r50.py', '../ld_fcos.py']
model = {{_base_.distiller}}
