"""The distilling detector: a one-stage student trained with a frozen teacher beside it.

The teacher is built from its own config and checkpoint, frozen, kept in eval mode, and held outside
the student's module tree: it is never in the student's ``state_dict`` or optimizer, and it follows
the student across devices and dtypes (``_apply`` is what ``.to()``, ``.cuda()`` and ``.half()`` call).
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.logging import print_log
from torch import Tensor, nn

from ld.checkpoint import load_weights
from ld.errors import ConfigError

DISTILLERS = ("LocalizationDistiller",)
# distillation head -> the plain head it trains (what is evaluated, and what serves as a teacher)
STUDENT_HEADS = {"LDGFLHead": "GFLHead", "LDGFLv2Head": "GFLv2Head"}
DISTILL_HEAD_KEYS = ("ld_main", "ld_vlr", "kd_main", "normalize")


def student_only(cfg: Config) -> Config:
    """A copy of a config whose model is the student detector alone (no teacher, no distillation terms).

    Plain detector configs come back unchanged, so any trained run can be evaluated or used as a teacher.
    """
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    if model.type in DISTILLERS:
        model.type = "GFL"
        for key in ("teacher_config", "teacher_ckpt"):
            model.pop(key, None)
    head = model.bbox_head
    if head.type in STUDENT_HEADS:
        head.type = STUDENT_HEADS[head.type]
        for key in DISTILL_HEAD_KEYS:
            head.pop(key, None)
    return cfg


def build_teacher(teacher_config: str | Path | Config | dict, teacher_ckpt: str | Path | None) -> nn.Module:
    """Build the teacher detector from its config and load its checkpoint, exactly.

    A checkpoint that does not fit the config (missing or unexpected keys, other shapes) is an error
    naming the keys (:func:`ld.checkpoint.load_weights`): a partially loaded teacher would silently
    distil noise.
    """
    cfg = Config.fromfile(str(teacher_config)) if isinstance(teacher_config, (str, Path)) else teacher_config
    cfg = student_only(cfg if isinstance(cfg, Config) else Config(cfg))
    teacher = MODELS.build(cfg.model)
    if teacher_ckpt is not None:
        load_weights(teacher, teacher_ckpt, what=f"teacher checkpoint (teacher config {teacher_config})")
    else:
        print_log("teacher_ckpt is None: the teacher keeps its initial weights", logger="current", level=30)
    teacher.requires_grad_(False)
    return teacher.eval()


@MODELS.register_module()
class LocalizationDistiller(SingleStageDetector):
    """A one-stage GFocal student distilled from a frozen GFocal teacher (LD, Self-LD, assistants).

    Args:
        teacher_config: the teacher's config (path, Config or dict); a distillation config is reduced
            to its student, so a distilled model can teach in turn (teacher-assistant chains).
        teacher_ckpt: the teacher's checkpoint (``weights_only`` loading, exact key match).
        Other arguments: as ``SingleStageDetector``; ``bbox_head`` is an LD head (``LDGFLHead``, ...).
    """

    def __init__(self, backbone: dict, neck: dict, bbox_head: dict, teacher_config, teacher_ckpt=None,
                 train_cfg=None, test_cfg=None, data_preprocessor=None, init_cfg=None) -> None:
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head, train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if teacher_config is None:
            raise ConfigError("model.teacher_config is not set: `ld train` sets it from --teacher")
        teacher = build_teacher(teacher_config, teacher_ckpt)
        t_reg_max, s_reg_max = teacher.bbox_head.reg_max, self.bbox_head.reg_max
        if t_reg_max != s_reg_max:
            raise ConfigError(f"teacher reg_max {t_reg_max} != student reg_max {s_reg_max}: LD distils "
                              "edge distributions, which need the same number of bins")
        self._teacher = [teacher]  # in a list: not a submodule, so not in state_dict, parameters or DDP

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    def _apply(self, fn, *args, **kwargs):
        self.teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True) -> LocalizationDistiller:
        super().train(mode)
        self.teacher.train(False)
        return self

    def loss(self, batch_inputs: Tensor, batch_data_samples) -> dict[str, Tensor]:
        """Student losses with the teacher's head outputs on the same (already preprocessed) batch."""
        x = self.extract_feat(batch_inputs)
        with torch.no_grad():
            teacher_outs = self.teacher.bbox_head(self.teacher.extract_feat(batch_inputs))
        return self.bbox_head.loss(x, teacher_outs, batch_data_samples)
