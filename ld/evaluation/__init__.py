"""Evaluation: COCO metrics through pycocotools, VOC metrics through mmdet's ``eval_map``."""
from ld.evaluation.coco import COCO_METRICS, evaluate_coco, load_results
from ld.evaluation.voc import evaluate_voc, voc_inputs, voc_table

__all__ = ["COCO_METRICS", "evaluate_coco", "evaluate_voc", "load_results", "voc_inputs", "voc_table"]
