"""The project's mmdet modules; importing this package registers them in mmdet's registries."""
from ld.models import voting_nms  # noqa: F401  (enables test_cfg.nms type 'voting_cluster_diounms')
from ld.models.distiller import LocalizationDistiller, build_teacher, student_only
from ld.models.gflv2_head import GFLv2Head
from ld.models.ld_head import LDGFLHead, LDGFLv2Head

__all__ = ["GFLv2Head", "LDGFLHead", "LDGFLv2Head", "LocalizationDistiller", "build_teacher", "student_only"]
