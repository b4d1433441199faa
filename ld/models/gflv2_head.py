"""GFocalV2: GFocalV1's head plus the distribution-guided quality predictor (DGQP)."""
from __future__ import annotations

from mmdet.models.dense_heads import GFLHead
from mmdet.registry import MODELS
from torch import Tensor, nn

from ld.ops.dgqp import dgqp_features, joint_score_logits


@MODELS.register_module()
class GFLv2Head(GFLHead):
    """GFocalV2 head (Li et al., CVPR 2021): the classification score is multiplied by a localization
    quality predicted from the statistics of the four edge distributions.

    The joint score is returned as a logit (:func:`ld.ops.dgqp.joint_score_logits`), so training (QFL),
    inference and LD use GFocalV1's code paths unchanged.

    Args:
        reg_topk: top-k probabilities per edge fed to DGQP (4).
        reg_channels: hidden width of the DGQP MLP (64).
        add_mean: also feed the mean of the top-k (True: 4 x 5 = 20 features).
        Other arguments: as mmdet's ``GFLHead``.
    """

    def __init__(self, *args, reg_topk: int = 4, reg_channels: int = 64, add_mean: bool = True, **kwargs) -> None:
        self.reg_topk = reg_topk
        self.reg_channels = reg_channels
        self.add_mean = add_mean
        super().__init__(*args, **kwargs)  # calls _init_layers

    def _init_layers(self) -> None:
        super()._init_layers()
        features = 4 * (self.reg_topk + int(self.add_mean))
        self.reg_conf = nn.Sequential(
            nn.Conv2d(features, self.reg_channels, 1), nn.ReLU(inplace=True),
            nn.Conv2d(self.reg_channels, 1, 1), nn.Sigmoid())

    def forward_single(self, x: Tensor, scale: nn.Module) -> tuple[Tensor, Tensor]:
        """Joint score logits ``(B, C, H, W)`` and edge-distribution logits ``(B, 4 * (reg_max + 1), H, W)``."""
        cls_logits, bbox_pred = super().forward_single(x, scale)
        quality = self.reg_conf(dgqp_features(bbox_pred, self.reg_max, self.reg_topk, self.add_mean))
        return joint_score_logits(cls_logits, quality), bbox_pred
