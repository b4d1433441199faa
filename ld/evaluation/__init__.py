"""Evaluation: COCO metrics through pycocotools, VOC metrics as mmdet computes them."""
from ld.evaluation.coco import COCO_METRICS, evaluate_coco, load_results
from ld.evaluation.voc import evaluate_voc, load_voc_annotations, voc_table

__all__ = ["COCO_METRICS", "evaluate_coco", "evaluate_voc", "load_results", "load_voc_annotations", "voc_table"]
