"""Evaluation: COCO metrics through pycocotools."""
from ld.evaluation.coco import COCO_METRICS, evaluate_coco

__all__ = ["COCO_METRICS", "evaluate_coco"]
