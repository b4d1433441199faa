"""`test_cfg.nms = dict(type='voting_cluster_diounms', ...)` works in an mmdet head's predict."""
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

import ld.models  # noqa: F401  (registers the modules)


@pytest.fixture
def head(repo_root):
    from mmdet.registry import MODELS

    cfg = Config.fromfile("pipelines/configs/gfl_r18_1x.py")
    return MODELS.build(cfg.model).bbox_head


def _results():
    boxes = torch.tensor([[10.0, 10.0, 50.0, 50.0], [11.0, 10.0, 51.0, 50.0], [60.0, 60.0, 90.0, 90.0],
                          [10.0, 10.0, 50.0, 50.0]])
    return InstanceData(bboxes=boxes, scores=torch.tensor([0.9, 0.8, 0.7, 0.6]), labels=torch.tensor([0, 0, 0, 1]))


def test_voting_nms_keeps_clusters_and_moves_boxes_by_votes(head):
    from ld.ops.voting_cluster_diou_nms import voting_cluster_diou_nms

    cfg = Config(dict(nms=dict(type="voting_cluster_diounms", iou_threshold=0.6), max_per_img=100,
                      min_bbox_size=0))
    out = head._bbox_post_process(_results(), cfg, rescale=False, with_nms=True, img_meta={})
    r = _results()
    dets, labels, keep = voting_cluster_diou_nms(r.bboxes, r.scores, r.labels, iou_threshold=0.6)
    torch.testing.assert_close(out.bboxes, dets[:, :4])
    torch.testing.assert_close(out.scores, dets[:, 4])
    assert out.labels.tolist() == labels.tolist() == [0, 0, 1]
    assert out.bboxes[0, 0].item() != 10.0  # the suppressed neighbour voted


def test_plain_nms_is_untouched(head):
    cfg = Config(dict(nms=dict(type="nms", iou_threshold=0.6), max_per_img=100, min_bbox_size=0))
    out = head._bbox_post_process(_results(), cfg, rescale=False, with_nms=True, img_meta={})
    assert out.labels.tolist() == [0, 0, 1]
    torch.testing.assert_close(out.bboxes[0], torch.tensor([10.0, 10.0, 50.0, 50.0]))


def test_voting_nms_respects_max_per_img(head):
    cfg = Config(dict(nms=dict(type="voting_cluster_diounms", iou_threshold=0.6), max_per_img=1, min_bbox_size=0))
    out = head._bbox_post_process(_results(), cfg, rescale=False, with_nms=True, img_meta={})
    assert len(out) == 1 and out.scores.item() == pytest.approx(0.9)
