# Ablation of the VLR rule: Main LD + VLR LD with the VLR selected by the textbook DIoU (IoU minus the
# normalised centre distance, the paper's prose) instead of upstream's overlap (intersection over the
# anchor's area minus that distance; HikariTJU/LD mmdet/core/bbox/iou_calculators/iou2d_calculator.py,
# mode='diou'), which every paper-table row uses. Run it with
# `dvc exp run -S '+distill.ld_vlr_diou_r18_gfl_r50_1x={teacher: gfl_r50_2x}'`
_base_ = ['./_base_/students/gfl_r18.py', './_base_/schedules/1x.py']
teacher = 'gfl_r50_2x'
model = dict(bbox_head=dict(ld_vlr=dict(enabled=True, overlap='diou')))
