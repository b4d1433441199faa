"""The LD loss: KL divergence between softened teacher and student distributions.

Pure torch. For LD the rows are box-edge distributions (reg_max + 1 bins); classification KD uses
the same KL over class logits.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def ld_loss(student_logits: Tensor, teacher_logits: Tensor, T: float = 10.0) -> Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged over the bins, per row.

    Args:
        student_logits: ``(N, reg_max + 1)`` logits, one row per box edge (or ``(N, C)`` class logits).
        teacher_logits: same shape; detached here, so the teacher never receives gradients.
        T: temperature (> 0); the ``T^2`` factor keeps gradient sizes comparable across temperatures.

    Returns:
        ``(N,)`` unweighted, unreduced losses (the form of mmdet's ``KnowledgeDistillationKLDivLoss``
        before weighting: ``kl_div(...).mean(1) * T * T``).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student {tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)} "
                         "logits differ in shape (reg_max or number of classes mismatch?)")
    if not T > 0:
        raise ValueError(f"temperature T must be > 0, got {T}")
    target = F.softmax(teacher_logits.detach() / T, dim=-1)
    kl = F.kl_div(F.log_softmax(student_logits / T, dim=-1), target, reduction="none")
    return kl.mean(dim=-1) * (T * T)
