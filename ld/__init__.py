"""ld-workspace: Localization Distillation for object detection on mmdet 3.x.

``import ld`` (or ``custom_imports=dict(imports=['ld'])`` in a config) registers the project's
modules with mmengine/mmdet registries and allow-lists mmengine's checkpoint types for
``torch.load(weights_only=True)``.
"""
from ld.checkpoint import allow_mmengine_globals, load_checkpoint

allow_mmengine_globals()

from ld.engine import live as _live  # noqa: E402,F401  (registers DVCLiveHook)

__version__ = "0.1.0"
__all__ = ["allow_mmengine_globals", "load_checkpoint", "__version__"]
