# 2x, multi-scale: GFocalV2's ms2x recipe (implus/GFocalV2 configs/gfocal/gfocal_r50_fpn_ms2x.py):
# 1333 x [480, 960], 8 GPUs x 2 images.
schedule = '2x'
multiscale = (480, 960)
samples_per_gpu = 2
