# LD for ATSS as upstream ran it (HikariTJU/LD configs/ld/): ATSS R-50 student, 1x, from the same detector
# with an R-101, 2x (general-distribution boxes both).
_base_ = ['./_base_/students/atss_r50.py', './_base_/schedules/1x.py']
samples_per_gpu = 2  # upstream configs/ld/ld_r50_atss_r101_1x.py: 2 per GPU at lr 0.01
teacher = 'atss_r101_2x'
