# Main LD: GFocalV2 R-18 student, 1x, from the GFocalV2 R-50 2x teacher.
_base_ = ['./_base_/students/gfl_r18.py', './_base_/schedules/1x.py']
teacher = 'gflv2_r50_2x'
model = dict(bbox_head=dict(type='LDGFLv2Head'))  # the GFocalV2 (DGQP) head with the LD terms
