"""``test_cfg.nms = dict(type='voting_cluster_diounms', iou_threshold=0.6)`` in any mmdet dense head.

mmdet's heads post-process through ``BaseDenseHead._bbox_post_process``, whose NMS keeps the input
boxes of the survivors, so score voting (which moves boxes) cannot plug in as an mmcv NMS op. This
wraps that method: for the voting NMS type it lets mmdet do everything but the NMS (rescale, score
factors, min size), then applies :func:`ld.ops.voting_cluster_diou_nms`; any other NMS type is untouched.
"""
from __future__ import annotations

from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.structures.bbox import get_box_tensor

from ld.layout import VOTING_NMS
from ld.ops.voting_cluster_diou_nms import voting_cluster_diou_nms

_mmdet_bbox_post_process = BaseDenseHead._bbox_post_process


def _bbox_post_process(self, results, cfg, rescale=False, with_nms=True, img_meta=None):
    nms = cfg.get("nms") if cfg is not None else None
    if not (with_nms and nms is not None and nms.get("type") == VOTING_NMS):
        return _mmdet_bbox_post_process(self, results, cfg, rescale, with_nms, img_meta)
    results = _mmdet_bbox_post_process(self, results, cfg, rescale, False, img_meta)
    if results.bboxes.numel() == 0:
        return results
    options = {k: v for k, v in nms.items() if k != "type"}
    dets, _, keep = voting_cluster_diou_nms(get_box_tensor(results.bboxes), results.scores, results.labels,
                                            max_num=cfg.get("max_per_img", -1), **options)
    results = results[keep]
    results.bboxes = dets[:, :4]
    return results


BaseDenseHead._bbox_post_process = _bbox_post_process
