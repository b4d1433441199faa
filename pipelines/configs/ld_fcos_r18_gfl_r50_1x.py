# LD into FCOS from a GFocal teacher ("LD for arbitrary detectors"): FCOS R-18 student (general-
# distribution boxes), 1x, upstream's FCOS recipe (Main LD + VLR LD + KD), from the GFocalV1 R-50 2x teacher.
_base_ = ['./_base_/students/fcos_r18.py', './_base_/schedules/1x.py']
teacher = 'gfl_r50_2x'
