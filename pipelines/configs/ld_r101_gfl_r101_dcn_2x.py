# Main LD: GFocalV1 R-101 student, 2x, from the R-101-DCN teacher.
_base_ = ['./_base_/students/gfl_r101.py', './_base_/schedules/gfl_mstrain_2x.py']
teacher = 'gfl_r101_dcn_2x'
# HikariTJU/LD configs/ld/ld_gflv1_r101dcn_r101_fpn_coco_2x.py: 3 images per GPU (x 2 GPUs), ms 1333 x [480, 800]
samples_per_gpu = 3
