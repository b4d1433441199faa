"""The paper's math as pure torch functions (no mmcv, mmdet or mmengine): what ``import ld`` exports.

- :mod:`ld.ops.ld_loss`: the LD loss (softened KL between distributions);
- :mod:`ld.ops.distribution`: a box edge's general distribution (probabilities, expected offset) and
  :func:`flatten_levels`;
- :mod:`ld.ops.distillation`: the distillation terms (main-region LD, VLR LD, classification KD);
- :mod:`ld.ops.vlr`: the valuable localization region (one image, or a batch with :func:`pad_gt`);
- :mod:`ld.ops.box_ops`: IoU and DIoU, one pairwise kernel (also the VLR's and the voting NMS's);
- :mod:`ld.ops.dgqp`: GFocalV2's distribution-guided quality predictor inputs;
- :mod:`ld.ops.ambiguity`: localization-ambiguity measures of edge distributions;
- :mod:`ld.ops.voting_cluster_diou_nms`: score-voting Cluster-DIoU-NMS;
- :mod:`ld.ops.nms`: plain NMS (mmcv's CPU kernel, in torch).
"""
from ld.ops.distillation import class_kd, main_region_ld, vlr_ld
from ld.ops.distribution import flatten_levels
from ld.ops.ld_loss import ld_loss
from ld.ops.vlr import pad_gt, vlr_region, vlr_region_batched
from ld.ops.voting_cluster_diou_nms import voting_cluster_diou_nms

__all__ = ["class_kd", "flatten_levels", "ld_loss", "main_region_ld", "pad_gt", "vlr_ld", "vlr_region",
           "vlr_region_batched", "voting_cluster_diou_nms"]
