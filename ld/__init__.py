"""ld-workspace: Localization Distillation for object detection on mmdet 3.x.

``import ld`` is light: it exports the paper's math as pure torch functions (:mod:`ld.ops`, imported on
first use) and imports nothing of mmcv, mmdet or mmengine. The layout follows the pipeline:

- :mod:`ld.data`: the embedded dataset, COCO/VOC checks and conversion;
- :mod:`ld.ops`: the pure math (LD loss, distillation terms, VLR, box ops, DGQP, ambiguity, NMS);
- :mod:`ld.models`: the mmdet modules (distiller, LD heads, GFocalV2 head, voting NMS). Importing it
  registers them with mmdet's registries, allow-lists mmengine's checkpoint types for
  ``torch.load(weights_only=True)`` and, where mmcv has no CUDA ops, puts a pure-torch NMS under mmcv's
  on the GPU; configs load it with ``custom_imports=dict(imports=['ld.models', ...])``;
- :mod:`ld.engine`: training, evaluation, seeds, teacher import, the run hooks;
- :mod:`ld.results`: tables, the paper's tables, the ambiguity analysis, notebooks and reports.
"""
__version__ = "0.1.0"
__all__ = ["class_kd", "flatten_levels", "ld_loss", "main_region_ld", "vlr_ld", "vlr_region",
           "voting_cluster_diou_nms", "__version__"]


def __getattr__(name: str):
    """The math on first use (``ld.ld_loss``, ``from ld import ld_loss``): the tables, notebooks and data
    commands, which import ``ld.results`` or ``ld.data``, do not import torch."""
    if name in __all__ and name != "__version__":
        from ld import ops

        return getattr(ops, name)
    raise AttributeError(f"module 'ld' has no attribute {name!r}")
