# Teacher assistant: GFocalV1 R-34, 1x, distilled (Main LD) from the GFocalV1 R-50 2x teacher.
_base_ = ['./_base_/students/gfl_r34.py', './_base_/schedules/1x.py']
teacher = 'gfl_r50_2x'
