"""The project's mmdet modules. Importing this package (configs: ``custom_imports``) registers them in
mmdet's registries, allow-lists mmengine's checkpoint types for ``torch.load(weights_only=True)``, and,
where mmcv has no CUDA ops, puts GPU kernels under mmcv's NMS, focal loss and DCN (:mod:`ld.models.mmcv_cuda`)."""
from ld.checkpoint import allow_mmengine_globals
from ld.models import voting_nms  # noqa: F401  (enables test_cfg.nms type 'voting_cluster_diounms')
from ld.models.distiller import LocalizationDistiller, build_student, build_teacher, student_only
from ld.models.distribution_heads import ATSSGFLHead, FCOSGFLHead, RetinaGFLHead
from ld.models.gflv2_head import GFLv2Head
from ld.models.ld_dense_heads import LDATSSGFLHead, LDFCOSGFLHead, LDRetinaGFLHead
from ld.models.ld_head import LDGFLHead, LDGFLv2Head
from ld.models.mmcv_cuda import install as _install_mmcv_cuda

allow_mmengine_globals()
_install_mmcv_cuda()  # without mmcv's CUDA ops: pure-torch NMS and focal loss, torchvision's or pure DCN

__all__ = ["ATSSGFLHead", "FCOSGFLHead", "GFLv2Head", "LDATSSGFLHead", "LDFCOSGFLHead", "LDGFLHead", "LDGFLv2Head",
           "LDRetinaGFLHead", "LocalizationDistiller", "RetinaGFLHead", "build_student", "build_teacher",
           "student_only"]
