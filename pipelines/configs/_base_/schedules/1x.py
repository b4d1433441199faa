# 1x, single-scale: the GFocalV1 LD recipe and the 1x baselines.
schedule = '1x'  # a name the profile maps to epochs and LR steps (1x: 12 epochs, steps [8, 11] on COCO)
# Images per GPU of upstream's GFocalV1 LD recipe: the LD README's "mini-batch 6" is 2 GPUs x 3 at lr 0.00375
# (HikariTJU/LD configs/ld/ld_gflv1_r101_r18_fpn_coco_1x.py: samples_per_gpu=3). A profile may fix it.
samples_per_gpu = 3
multiscale = None  # or (lo, hi): short edges of a random resize at the 1333x800 size (upstream's ms-2x rows)
