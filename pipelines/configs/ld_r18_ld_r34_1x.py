# Teacher-assistant chain R-50 -> R-34 -> R-18: GFocalV1 R-18, 1x, distilled from the R-34 assistant.
_base_ = ['./_base_/students/gfl_r18.py', './_base_/schedules/1x.py']
teacher = 'ld_r34_gfl_r50_1x'
