# Teacher assistant: GFocalV1 R-34, 1x, distilled (Main LD) from the GFocalV1 R-50 2x teacher.
_base_ = ['./gfl_r34_1x.py', './_base_/ld.py']
teacher = 'gfl_r50_2x'
model = {{_base_.distiller}}
