# Main LD + VLR LD: GFocalV1 R-18 student, 1x, from the GFocalV1 R-50 2x teacher.
_base_ = ['./_base_/students/gfl_r18.py', './_base_/schedules/1x.py']
teacher = 'gfl_r50_2x'
model = dict(bbox_head=dict(ld_vlr=dict(enabled=True)))
