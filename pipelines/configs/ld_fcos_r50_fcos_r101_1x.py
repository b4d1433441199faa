# LD for FCOS as upstream ran it (HikariTJU/LD configs/ld/): FCOS R-50 student, 1x, from the same detector
# with an R-101, 2x (general-distribution boxes both).
_base_ = ['./_base_/students/fcos_r50.py', './_base_/schedules/1x.py']
teacher = 'fcos_r101_2x'
