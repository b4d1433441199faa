# LD for RetinaNet as upstream ran it (HikariTJU/LD configs/ld/): RetinaNet R-50 student, 1x, from the same detector
# with an R-101, 2x (general-distribution boxes both).
_base_ = ['./_base_/students/retina_r50.py', './_base_/schedules/1x.py']
samples_per_gpu = 2  # upstream configs/ld/ld_retina_r50_1x.py: 2 per GPU at lr 0.0025
teacher = 'retina_r101_2x'
