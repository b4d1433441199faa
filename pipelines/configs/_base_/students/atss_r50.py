# LD student: ATSS R-50 (general-distribution boxes) under the LD recipe of ../ld_atss.py (the model
# becomes the distiller, the head its LD head). A row names the teacher.
_base_ = ['../detectors/atss_r50.py', '../ld_atss.py']
model = {{_base_.distiller}}
