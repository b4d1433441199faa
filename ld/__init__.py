"""ld-workspace: Localization Distillation for object detection on mmdet 3.x.

``import ld`` (or ``custom_imports=dict(imports=['ld'])`` in a config) registers the project's
modules with mmdet's registries (``LocalizationDistiller``, ``LDGFLHead``, ``LDGFLv2Head``,
``GFLv2Head``, the ``voting_cluster_diounms`` NMS type, ``DVCLiveHook``, ``EpochSeedHook``),
allow-lists mmengine's checkpoint types for ``torch.load(weights_only=True)``, and, where mmcv has no
CUDA ops, puts a pure-torch NMS under mmcv's on the GPU (:mod:`ld.mmcv_cuda`).

The paper's math is importable as pure torch functions: :func:`ld_loss`, :func:`vlr_region`,
:func:`voting_cluster_diou_nms`.
"""
from ld.checkpoint import allow_mmengine_globals, load_checkpoint
from ld.ld_loss import ld_loss
from ld.vlr import vlr_region
from ld.voting_cluster_diou_nms import voting_cluster_diou_nms

allow_mmengine_globals()

from ld import models  # noqa: E402,F401  (registers the mmdet modules)
from ld.engine import determinism as _determinism  # noqa: E402,F401  (registers EpochSeedHook)
from ld.engine import live as _live  # noqa: E402,F401  (registers DVCLiveHook)
from ld.mmcv_cuda import install as _install_mmcv_cuda  # noqa: E402

_install_mmcv_cuda()  # without mmcv's CUDA ops: the pure-torch NMS on a GPU, a clear refusal for DCN

__version__ = "0.1.0"
__all__ = ["allow_mmengine_globals", "ld_loss", "load_checkpoint", "vlr_region", "voting_cluster_diou_nms",
           "__version__"]
