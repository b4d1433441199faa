# LD student: RetinaNet R-50 (general-distribution boxes) under the LD recipe of ../ld_retina.py (the model
# becomes the distiller, the head its LD head). A row names the teacher.
_base_ = ['../detectors/retina_r50.py', '../ld_retina.py']
model = {{_base_.distiller}}
