# 2x, multi-scale: mmdet's released GFL teachers (configs/gfl/gfl_r50_fpn_mstrain_2x_coco.py and the R-101 /
# DCN / X-101 ones): multi-scale 1333 x [480, 800], 8 GPUs x 2 images.
schedule = '2x'
multiscale = (480, 800)
samples_per_gpu = 2
