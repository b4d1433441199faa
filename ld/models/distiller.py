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

from ld.checkpoint import file_digest, load_weights
from ld.errors import ConfigError
from ld.layout import TEACHER_PRECISIONS
from ld.models.ld_head import LDHeadMixin
from ld.models.teacher_cache import TeacherCache, check_deterministic
from ld.ops.box_ops import prior_centers
from ld.ops.distribution import flatten_levels

DISTILLERS = ("LocalizationDistiller",)
DISTILL_HEAD_KEYS = ("ld_main", "ld_vlr", "kd_main", "imitation", "normalize")
REGION_KEYS = ("ld_main", "ld_vlr", "kd_main")


def student_only(cfg: Config) -> Config:
    """A copy of a config whose model is the student detector alone (no teacher, no distillation terms).

    Plain detector configs come back unchanged, so any trained run can be evaluated or used as a teacher.
    """
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    head = model.bbox_head
    ld_head = MODELS.get(head.type) if isinstance(head.type, str) else None
    ld_head = ld_head if isinstance(ld_head, type) and issubclass(ld_head, LDHeadMixin) else None
    if model.type in DISTILLERS and ld_head is None:
        raise ConfigError(f"model.bbox_head.type {head.type!r} is not an LD head: a {model.type} trains one "
                          "(ld.models.ld_head.LDHeadMixin)")
    if ld_head is not None:  # the plain head it trains, and that head's detector
        head.type = ld_head.student_head.__name__
        for key in DISTILL_HEAD_KEYS:
            head.pop(key, None)
        if model.type in DISTILLERS:
            model.type = ld_head.detector
            for key in ("teacher_config", "teacher_ckpt", "teacher_cache", "teacher_precision"):
                model.pop(key, None)
    return cfg


def build_student(config: str | Path | Config | dict, checkpoint: str | Path | None,
                  device: str | torch.device | None = None, what: str = "checkpoint") -> nn.Module:
    """The student detector of ``config`` (:func:`student_only`) with the weights of ``checkpoint`` loaded
    exactly, in eval mode, on ``device`` (default: where it is built, the CPU); ``model.cfg`` is its
    student-only config, as mmdet's ``init_detector`` sets it (its test dataloader, its ``test_cfg``).

    Args:
        config: an exported run's ``config.py`` (path), a Config or a dict; a distillation config is
            reduced to its student, so the teacher is neither built nor loaded.
        checkpoint: its weights; None keeps the initial weights (an untrained teacher).
        device: where to put the model.
        what: how an error names ``checkpoint``.

    A checkpoint that does not fit the config (missing or unexpected keys, other shapes) is an error
    naming the keys (:func:`ld.checkpoint.load_weights`).
    """
    cfg = Config.fromfile(str(config)) if isinstance(config, (str, Path)) else config
    cfg = student_only(cfg if isinstance(cfg, Config) else Config(cfg))
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_weights(model, checkpoint, what=what)
    model.cfg = cfg
    if device is not None:
        model.to(device)
    return model.eval()


def build_teacher(teacher_config: str | Path | Config | dict, teacher_ckpt: str | Path | None) -> nn.Module:
    """Build the teacher detector from its config and load its checkpoint, exactly (:func:`build_student`);
    frozen and in eval mode.

    A checkpoint that does not fit the config is an error naming the keys: a partially loaded teacher
    would silently distil noise.
    """
    teacher = build_student(teacher_config, teacher_ckpt, what=f"teacher checkpoint (teacher config {teacher_config})")
    if teacher_ckpt is None:
        print_log("teacher_ckpt is None: the teacher keeps its initial weights", logger="current", level=30)
    return teacher.requires_grad_(False)


def teacher_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype of the teacher's forward pass on ``device`` (None: float32 throughout).

    ``'auto'``: bfloat16 where the device computes it natively (a CUDA GPU with bfloat16, else float16;
    a CPU with AVX512-BF16 or AMX whose AVX512 kernels this process uses), float32 elsewhere (and under the
    deterministic mode's AVX2 kernels, :mod:`ld.cpu_pinning`); ``'fp32'``: float32 (the teacher as upstream runs
    it); ``'bf16'``: bfloat16 even where it is emulated (slow). The soft targets differ from float32 by
    bfloat16's rounding (measured in ``pipelines/bench``); the student's losses stay float32.
    """
    if precision not in TEACHER_PRECISIONS:
        raise ConfigError(f"teacher_precision must be one of {TEACHER_PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if torch.device(device).type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # the kernels this process dispatches to decide: pinned to AVX2 (ld.cpu_pinning, the deterministic mode)
    # no CPU computes bfloat16 natively, so every CPU runs the teacher in float32 and gives the same bits
    native = torch.backends.cpu.get_cpu_capability().startswith("AVX512") and any(
        getattr(torch.cpu, check, lambda: False)() for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return torch.bfloat16 if native else None


def box_logits(head: nn.Module, feats: tuple[Tensor, ...]) -> list[Tensor]:
    """A head's edge-distribution logits ``[(B, 4 * bins, H, W)]`` alone. For a GFocal head its box tower,
    ``gfl_reg`` and scale per level, without the class tower; equal to ``head(feats)[1]`` (mmdet 3.3
    ``GFLHead.forward_single``, whose box branch never reads the class branch; GFocalV2's DGQP only
    changes the class scores). Other heads run whole."""
    if not hasattr(head, "gfl_reg"):
        return [p.float() for p in head(feats)[1]]
    preds = []
    for x, scale in zip(feats, head.scales):
        for conv in head.reg_convs:
            x = conv(x)
        preds.append(scale(head.gfl_reg(x)).float())
    return preds


def teacher_forward(teacher: nn.Module, inputs: Tensor, with_cls: bool = True,
                    dtype: torch.dtype | None = None) -> tuple[Tensor | None, Tensor]:
    """The teacher's flattened head outputs ``(cls (B, A, C) or None, reg (B, A, 4 * bins))``, float32,
    without autograd.

    Args:
        with_cls: also run the class tower (False: ``cls`` is None and only the box tower runs, when no
            term reads the teacher's class logits: 0.85x of the teacher's time at 320 px).
        dtype: autocast dtype (:func:`teacher_dtype`; None: float32), in channels-last layout.
    """
    return teacher_head(teacher, teacher_features(teacher, inputs, dtype), with_cls, dtype)


def teacher_features(teacher: nn.Module, inputs: Tensor, dtype: torch.dtype | None = None) -> tuple[Tensor, ...]:
    """The teacher's FPN features ``[(B, C, H, W)]`` without autograd (``dtype``: as :func:`teacher_forward`)."""
    with torch.no_grad(), torch.autocast(inputs.device.type, dtype=dtype, enabled=dtype is not None):
        if dtype is not None:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return teacher.extract_feat(inputs)


def teacher_head(teacher: nn.Module, feats: tuple[Tensor, ...], with_cls: bool = True,
                 dtype: torch.dtype | None = None) -> tuple[Tensor | None, Tensor]:
    """The teacher head's flattened outputs on its features (:func:`teacher_forward`)."""
    device = feats[0].device.type
    with torch.no_grad(), torch.autocast(device, dtype=dtype, enabled=dtype is not None):
        if with_cls:
            outs = teacher.bbox_head(feats)
            cls, reg = outs[0], outs[1]
        else:
            cls, reg = None, box_logits(teacher.bbox_head, feats)
    return (None if cls is None else flatten_levels(cls).float()), flatten_levels(reg).float()


def check_same_centres(teacher_head: nn.Module, student_head: nn.Module) -> None:
    """Refuse a teacher whose distributions describe other points than the student's: LD compares the
    edge distributions of one location, measured from its prior's centre, on the same strides."""
    t_gen, s_gen = teacher_head.prior_generator, student_head.prior_generator
    if [tuple(s) for s in t_gen.strides] != [tuple(s) for s in s_gen.strides]:
        raise ConfigError(f"teacher strides {t_gen.strides} != student strides {s_gen.strides}")
    sizes = [(2, 2)] * t_gen.num_levels
    for level, (t, s) in enumerate(zip(t_gen.grid_priors(sizes, device="cpu"), s_gen.grid_priors(sizes, device="cpu"))):
        t = t[::teacher_head.num_base_priors]
        s = s[::student_head.num_base_priors]
        t, s = prior_centers(t), prior_centers(s)
        if not torch.allclose(t, s):
            raise ConfigError(f"teacher and student priors have other centres on level {level} ({t[1].tolist()} vs "
                              f"{s[1].tolist()}): an FCOS head needs point_offset=0.0 beside an anchor-based head")


class TeacherOutputs:
    """Online LD: the teacher runs on the whole batch when the student's head asks for its outputs."""

    def __init__(self, teacher: nn.Module, inputs: Tensor, dtype: torch.dtype | None = None) -> None:
        self.teacher, self.inputs, self.dtype = teacher, inputs, dtype
        self._feats = None

    def features(self) -> tuple[Tensor, ...]:
        """The teacher's FPN features of the batch (computed once)."""
        if self._feats is None:
            self._feats = teacher_features(self.teacher, self.inputs, self.dtype)
        return self._feats

    def rows(self, needed: Tensor, with_cls: bool = False) -> tuple[Tensor | None, Tensor]:
        """``(cls (B, A, C) or None, reg (B, A, R))`` everywhere (``needed`` (B, A) is not used); the class
        tower runs only ``with_cls``."""
        return teacher_head(self.teacher, self.features(), with_cls, self.dtype)


class CachedTeacherOutputs(TeacherOutputs):
    """Offline LD: the teacher's outputs at the needed locations of each image, from the soft-target cache;
    the teacher runs only on the images of the batch not cached yet, whose targets are then stored. Cached
    or not, a step sees the same float16-rounded targets."""

    def __init__(self, teacher: nn.Module, inputs: Tensor, batch_data_samples, cache: TeacherCache,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(teacher, inputs, dtype)
        self.cache = cache
        shape = tuple(inputs.shape[-2:])
        self.keys = [cache.key(s.metainfo.get("img_id", s.metainfo.get("img_path")), bool(s.metainfo.get("flip")),
                               s.metainfo.get("flip_direction"), shape) for s in batch_data_samples]

    def rows(self, needed: Tensor, with_cls: bool = False) -> tuple[Tensor | None, Tensor]:
        """``(cls (B, A, C) or None, reg (B, A, R))``, zero where ``needed`` (B, A) is not set."""
        # the needed anchors of each image, ascending: one nonzero (and one copy to the CPU) for the batch
        anchors = needed.nonzero()[:, 1]
        counts = needed.count_nonzero(dim=1).tolist()
        index_per_image, cpu_index_per_image = anchors.split(counts), anchors.cpu().split(counts)
        entries, misses = {}, []
        for i, key in enumerate(self.keys):
            entry = self.cache.get(key, cpu_index_per_image[i])
            if entry is None:
                misses.append(i)
            else:
                entries[i] = entry
        if misses:
            t_cls, t_reg = teacher_forward(self.teacher, self.inputs[misses], with_cls, self.dtype)
            for j, i in enumerate(misses):
                index = index_per_image[i]
                entries[i] = self.cache.put(self.keys[i], index, t_reg[j, index], t_cls[j, index] if with_cls else None)
        first = entries[0]
        B, A = needed.shape
        reg = needed.new_zeros((B, A, first.reg.shape[-1]), dtype=torch.float32)
        cls = needed.new_zeros((B, A, first.cls.shape[-1]), dtype=torch.float32) if with_cls else None
        for i, entry in entries.items():
            index = entry.index.to(needed.device)
            reg[i, index] = entry.reg.to(reg.device, torch.float32)
            if with_cls:
                if entry.cls is None:
                    raise ConfigError(f"teacher cache {self.cache.root} has no class logits (written without "
                                      "kd_main): use another cache folder for runs with KD")
                cls[i, index] = entry.cls.to(cls.device, torch.float32)
        return cls, reg


@MODELS.register_module()
class LocalizationDistiller(SingleStageDetector):
    """A one-stage GFocal student distilled from a frozen GFocal teacher (LD, Self-LD, assistants).

    Args:
        teacher_config: the teacher's config (path, Config or dict); a distillation config is reduced
            to its student, so a distilled model can teach in turn (teacher-assistant chains).
        teacher_ckpt: the teacher's checkpoint (``weights_only`` loading, exact key match).
        teacher_cache: None for online LD, or ``dict(dir=..., pipeline=[train pipeline])`` for offline LD
            (:mod:`ld.models.teacher_cache`): the teacher's targets are computed once per image and flip and read
            back every epoch; refused for a random augmentation or a cache of another teacher.
        teacher_precision: the teacher's forward pass, ``'auto'``, ``'fp32'`` or ``'bf16'``
            (:func:`teacher_dtype`; ``params.yaml: ld.teacher_precision``).
        Other arguments: as ``SingleStageDetector``; ``bbox_head`` is an LD head (``LDGFLHead``, ...).
    """

    def __init__(self, backbone: dict, neck: dict, bbox_head: dict, teacher_config, teacher_ckpt=None,
                 teacher_cache=None, teacher_precision: str = "auto", train_cfg=None, test_cfg=None,
                 data_preprocessor=None, init_cfg=None) -> None:
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head, train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if teacher_config is None:
            raise ConfigError("model.teacher_config is not set: `ld train` sets it from --teacher")
        # Paired by construction: what the teacher's building draws (its modules' default initialisation, the
        # imitation adapter's) comes from a fork of the random generators, so the student's init_weights draws
        # exactly what a baseline of the same architecture draws with the same seed: the same initial weights.
        with torch.random.fork_rng(devices=[]):
            teacher = build_teacher(teacher_config, teacher_ckpt)
            t_reg_max, s_reg_max = teacher.bbox_head.reg_max, self.bbox_head.reg_max
            if t_reg_max != s_reg_max:
                raise ConfigError(f"teacher reg_max {t_reg_max} != student reg_max {s_reg_max}: LD distils "
                                  "edge distributions, which need the same number of bins")
            check_same_centres(teacher.bbox_head, self.bbox_head)
            self.bbox_head.set_teacher(teacher.bbox_head, teacher.bbox_head.in_channels)
        self._teacher = [teacher]  # in a list: not a submodule, so not in state_dict, parameters or DDP
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = teacher_dtype(teacher_precision, device)  # a known precision, or an error now
        print_log(f"teacher forward on {device}: {dtype or torch.float32} (teacher_precision={teacher_precision!r})",
                  logger="current")
        self.teacher_precision = teacher_precision
        if teacher_cache and self.bbox_head.imitation.enabled:
            raise ConfigError("feature imitation reads the teacher's features, which the soft-target cache does "
                              "not keep: train with teacher_cache off (params.yaml: ld.teacher_cache: false)")
        self.cache = self._open_cache(teacher_cache, teacher_ckpt, bbox_head) if teacher_cache else None

    @staticmethod
    def cache_fingerprint(teacher_ckpt, bbox_head: dict, pipeline: list, teacher_precision: str = "auto") -> dict:
        """What a teacher's soft targets depend on: its checkpoint, its precision on this machine's training
        device, the augmentation, the regions."""
        head = dict(bbox_head)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return {"teacher_sha256": file_digest(teacher_ckpt) if teacher_ckpt else "initial weights",
                "teacher_dtype": str(teacher_dtype(teacher_precision, device) or torch.float32),
                "pipeline": [dict(step) for step in pipeline],
                "regions": {k: dict(head[k]) for k in REGION_KEYS if k in head},
                "reg_max": head.get("reg_max", 16), "anchor_generator": dict(head.get("anchor_generator", {}))}

    def _open_cache(self, teacher_cache: dict, teacher_ckpt, bbox_head: dict) -> TeacherCache:
        pipeline = list(teacher_cache.get("pipeline") or [])
        if not pipeline:
            raise ConfigError("model.teacher_cache needs `pipeline`: the training pipeline it is valid for")
        check_deterministic(pipeline)
        cache = TeacherCache(teacher_cache["dir"], self.cache_fingerprint(teacher_ckpt, bbox_head, pipeline,
                                                                          self.teacher_precision))
        print_log(f"offline LD: teacher soft targets cached in {cache.root}", logger="current")
        return cache

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
        dtype = teacher_dtype(self.teacher_precision, batch_inputs.device)
        teacher = (TeacherOutputs(self.teacher, batch_inputs, dtype) if self.cache is None else
                   CachedTeacherOutputs(self.teacher, batch_inputs, batch_data_samples, self.cache, dtype))
        return self.bbox_head.loss(x, teacher, batch_data_samples)
