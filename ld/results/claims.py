"""The claims table: each claim of the LD paper and README, tested on this profile's seed study.

A claim compares two things measured here; its row gives the paper's number, ours, the difference with
its standard error and a verdict by one stated rule (:data:`RULE`):

- *holds*: the difference is in the claimed direction by more than two standard errors;
- *does not hold*: it is in the opposite direction by more than two standard errors;
- *inconclusive*: within two standard errors of zero (the study cannot tell);
- a row whose runs lack some of the profile's seeds says so (*not finished: k of n seeds*), its verdict
  provisional.

The kinds of claim (:class:`Claim` ``kind``):

- ``ap``: COCO AP of ``run`` against ``control`` over the seeds (:func:`ld.results.study.seed_summary`),
  independent groups: ``se = sqrt(s1²/n1 + s2²/n2)``;
- ``nms``: voting Cluster-DIoU-NMS against the config's NMS on the same models (every extra seed's model
  of every study run), paired: the mean of the per-model differences and its standard error; it also
  checks the claimed AP50 bound (a loss of at most 0.4 AP50);
- ``fps``: the model FPS of the LD student against the baseline's, from the benchmark
  (``results/bench/bench_<profile>.json``): one timing each, so the rule is a tolerance, not a standard
  error: it holds if the LD student is at most 10% slower (timing noise on a shared CPU);
- ``kl``: the KL divergence of the LD student's edge distributions to the teacher's against the
  baseline's (the ambiguity analysis, ``tables/kl_to_teacher.csv``: mean, std and count of
  detections per model and edge), Welch per edge: it holds when every edge is lower by more than two
  standard errors, fails when any edge is higher by more than two.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ld.results.study import pm, welch_se

Z = 2.0  # standard errors
FPS_TOLERANCE = 0.9  # the LD student's model FPS over the baseline's, at least
AP50_LOSS = 0.004  # the NMS claim's bound on the AP50 lost (0.4 points)
RULE = ("holds: the difference is in the claimed direction by more than 2 standard errors; does not hold: "
        "in the opposite direction by more than 2; inconclusive: within 2 of zero. FPS: holds if the LD "
        "student is at most 10% slower than the baseline (one timing each). NMS: also at most 0.4 AP50 lost.")
HOLDS, FAILS, OPEN = "holds", "does not hold", "inconclusive"


@dataclass(frozen=True)
class Claim:
    """One row: ``claim`` in words, the paper's ``paper`` number and its ``source``; ``run`` against
    ``control`` (study runs; for ``kl`` and ``fps`` the ``analysis`` student and baseline)."""
    claim: str
    paper: str
    source: str
    kind: str = "ap"
    run: str = ""
    control: str = ""


_R80 = "HikariTJU/LD README@80faf136"
_ABLATION = ("the CVPR paper's region ablation (its Table 2, per the maintainers in HikariTJU/LD issue #44), as "
             "third-party notes quote it; not checked against the PDF")
_DETECTORS = ("third-party notes on the CVPR paper ('RetinaNet, FCOS, ATSS from 36.9, 38.6, 39.2 to 39.0, 40.6, "
              "41.6'), not checked against the PDF; upstream's configs (configs/ld/ld_r50_atss_r101_1x.py, ...) teach "
              "each with an R-101 of the same detector, here the GFocal teacher (the 'any architecture' claim)")
CLAIMS: tuple[Claim, ...] = (
    Claim("Main LD improves the student", "+0.7 AP: R-18 35.8 -> 36.5 (R-101 teacher, COCO val, 1x)",
          f"{_R80}, 'GFocalV1 with LD' (Main LD alone: configs/ld/ld_r18_gflv1_r101_fpn_coco_1x.py has loss_ld only)",
          run="ld_r18_gfl_r50_1x", control="gfl_r18_1x"),
    Claim("+ VLR LD improves Main LD further", "+0.7 AP: R-50 41.1 -> 41.8 (R-101 teacher, COCO val)", _ABLATION,
          run="ld_vlr_r18_gfl_r50_1x", control="ld_r18_gfl_r50_1x"),
    Claim("+ Main KD (full LD) improves Main LD + VLR LD further", "+0.3 AP: R-50 41.8 -> 42.1 (R-101 teacher)",
          _ABLATION + "; 42.1 also in the newest README ('Main KD + Main LD + VLR LD R101->R50 1x')",
          run="ld_full_r18_gfl_r50_1x", control="ld_vlr_r18_gfl_r50_1x"),
    Claim("Self-LD improves a student with itself as the teacher", "+0.3 AP: R-18 35.8 -> 36.1; R-50 +0.5 (COCO val)",
          f"{_R80}, 'Self-LD'", run="selfld_r18_1x", control="gfl_r18_1x"),
    Claim("A teacher assistant (R-50 -> R-34 -> R-18) beats distilling R-50 -> R-18 directly", "no number published",
          f"{_R80}, introduction ('we suggest a teacher assistant (TA) strategy'; removed from later READMEs)",
          run="ld_r18_ld_r34_1x", control="ld_r18_gfl_r50_1x"),
    Claim("LD across heads: a GFocalV2 teacher improves a GFocalV1 student", "no number published",
          "the paper's thesis (LD distils any head that predicts edge distributions)",
          run="ld_r18_gflv2_r50_1x", control="gfl_r18_1x"),
    Claim("LD across heads: a GFocalV2 teacher improves a GFocalV2 student",
          "+0.4 AP: R-50 44.4 -> 44.8 (R-101 teacher, COCO test-dev)", f"{_R80}, 'GFocalV2 with LD'",
          run="ld_gflv2_r18_gflv2_r50_1x", control="gflv2_r18_1x"),
    Claim("The VLR by upstream's overlap rule helps more than by the textbook DIoU", "no ablation published",
          "the paper's prose defines the VLR by DIoU; upstream's code (mmdet/core/bbox/assigners/atss_assigner.py "
          "get_vlr_region, iou2d_calculator.py mode='diou') by its own overlap, which every table row uses",
          run="ld_vlr_r18_gfl_r50_1x", control="ld_vlr_diou_r18_gfl_r50_1x"),
    Claim("LD into other detectors: a GFocal teacher improves an ATSS student (general-distribution boxes)",
          "+2.4 AP: ATSS 39.2 -> 41.6 (ATSS R-101 teacher -> R-50, COCO val, 1x)", _DETECTORS,
          run="ld_atss_r18_gfl_r50_1x", control="atss_r18_1x"),
    Claim("LD into other detectors: a GFocal teacher improves an FCOS student (general-distribution boxes)",
          "+2.0 AP: FCOS 38.6 -> 40.6 (FCOS R-101 teacher -> R-50, COCO val, 1x)", _DETECTORS,
          run="ld_fcos_r18_gfl_r50_1x", control="fcos_r18_1x"),
    Claim("LD into other detectors: a GFocal teacher improves a RetinaNet student (general-distribution boxes)",
          "+2.1 AP: RetinaNet 36.9 -> 39.0 (RetinaNet R-101 teacher -> R-50, COCO val, 1x)", _DETECTORS,
          run="ld_retina_r18_gfl_r50_1x", control="retina_r18_1x"),
    Claim("+ GI feature imitation improves full LD further", "+0.3 AP: R-50 42.1 -> 42.4 (R-101 teacher, COCO val)",
          "HikariTJU/LD README (newest): 'Logit Mimicking vs. Feature Imitation' (Ours 42.1) and its weights list "
          "('Main KD + Main LD + VLR LD + GI imitation R101->R50', 42.4)",
          run="ld_full_gi_r18_gfl_r50_1x", control="ld_full_r18_gfl_r50_1x"),
    Claim("LD costs nothing at inference (model FPS of the LD student vs the baseline)",
          "'without adding any computational cost'", "HikariTJU/LD README (newest)", kind="fps"),
    Claim("Voting Cluster-DIoU-NMS against NMS on the same models: AP gain (AP75, AP50 beside)",
          "+0.1-0.3 AP, +0.2-0.5 AP75, at most 0.4 AP50 lost", f"{_R80} and the newest README", kind="nms"),
    Claim("The LD student's edge distributions are closer to the teacher's than the baseline's (KL per edge)",
          "a figure, no number", "the paper's figures of edge distributions", kind="kl"),
)


def verdict(delta: float | None, se: float | None, *, sign: int = 1) -> str:
    """:data:`RULE` for a difference ``delta`` with standard error ``se``; ``sign=-1``: the claim is a
    decrease. Without a difference: ''; with one but no standard error (one seed): inconclusive."""
    if delta is None or pd.isna(delta):
        return ""
    if se is None or pd.isna(se):
        return OPEN
    if sign * delta > Z * se:
        return HOLDS
    if sign * delta < -Z * se:
        return FAILS
    return OPEN


def _row(claim: Claim, ours: str, difference: str, result: str, status: str) -> dict[str, str]:
    return {"claim": claim.claim, "paper": claim.paper, "ours": ours, "difference": difference, "verdict": result,
            "status": status, "run": claim.run, "control": claim.control, "source": claim.source}


def _ap_row(claim: Claim, summary: pd.DataFrame, n_seeds: int | dict[str, int]) -> dict[str, str]:
    by_run = summary.set_index("run")
    missing = [r for r in (claim.run, claim.control) if r not in by_run.index]
    if missing:
        return _row(claim, "", "", "", f"not in the study: {', '.join(missing)} (params.yaml study)")
    run, control = by_run.loc[claim.run], by_run.loc[claim.control]
    if not run.n or not control.n:
        return _row(claim, "", "", "", "not run yet")
    delta = run.AP_mean - control.AP_mean
    se = welch_se(run.AP_std, run.n, control.AP_std, control.n) if run.n > 1 and control.n > 1 else None
    least = int(min(run.n, control.n))
    if isinstance(n_seeds, dict):  # each run's seeds at this profile (study.seeded)
        n_seeds = min(n_seeds.get(claim.run, 1), n_seeds.get(claim.control, 1))
    ours = (f"{pm(run.AP_mean, run.AP_std)} vs {pm(control.AP_mean, control.AP_std)} "
            f"(n = {int(run.n)}, {int(control.n)})")
    status = "finished" if least >= n_seeds else f"not finished: {least} of {n_seeds} seeds"
    return _row(claim, ours, pm(delta, se, delta=True), verdict(delta, se), status)


def paired(voting: pd.DataFrame, plain: pd.DataFrame, metric: str) -> tuple[float, float | None, int]:
    """Mean and standard error of ``voting - plain`` for ``metric`` over the models both evaluated
    (rows matched on run and seed): ``(mean, se, n)``; se None below 2 models."""
    keys = ["run", "seed"]
    both = voting[voting.status == "ok"].merge(plain[plain.status == "ok"], on=keys, suffixes=("_v", "_p"))
    diff = both[f"{metric}_v"].astype(float) - both[f"{metric}_p"].astype(float)
    n = len(diff)
    return (diff.mean() if n else float("nan")), (diff.std(ddof=1) / math.sqrt(n) if n > 1 else None), n


def _nms_row(claim: Claim, voting: pd.DataFrame, plain: pd.DataFrame, expected: int) -> dict[str, str]:
    (ap, ap_se, n), (ap75, ap75_se, _), (ap50, ap50_se, _) = (paired(voting, plain, m) for m in ("AP", "AP75", "AP50"))
    if not n:
        return _row(claim, "", "", "", "not run yet")
    ours = f"AP75 {pm(ap75, ap75_se, delta=True)}, AP50 {pm(ap50, ap50_se, delta=True)} (paired, {n} models)"
    result = verdict(ap, ap_se)
    if ap50_se is not None and -ap50 > AP50_LOSS + Z * ap50_se:
        result = FAILS  # loses more AP50 than claimed
    elif result == HOLDS and -ap50 > AP50_LOSS:
        result = OPEN
    status = "finished" if n >= expected else f"not finished: {n} of {expected} models"
    return _row(claim, ours, pm(ap, ap_se, delta=True), result, status)


def _fps_row(claim: Claim, bench: Path, baseline: str, student: str) -> dict[str, str]:
    fps = json.loads(bench.read_text()).get("fps", {}) if bench.is_file() else {}
    if baseline not in fps or student not in fps:
        return _row(claim, "", "", "", f"not measured: {bench} has no FPS of {baseline} and {student} "
                                       "(dvc repro pipelines/bench/dvc.yaml)")
    ratio = fps[student]["model_fps"] / fps[baseline]["model_fps"]
    ours = (f"{fps[student]['model_fps']:.1f} vs {fps[baseline]['model_fps']:.1f} images/s "
            f"({fps[student]['device']}, batch {fps[student]['batch_size']})")
    return _row(claim, ours, f"x{ratio:.3f}", HOLDS if ratio >= FPS_TOLERANCE else FAILS, "finished")


def _kl_row(claim: Claim, kl: pd.DataFrame | None, baseline: str, student: str) -> dict[str, str]:
    if kl is None or not {baseline, student} <= set(kl.model):
        return _row(claim, "", "", "", "not run yet (the ambiguity stage)")
    s, b = (kl[kl.model == m].set_index("edge") for m in (student, baseline))
    delta = s["mean"] - b["mean"]
    se = welch_se(s["std"], s["count"], b["std"], b["count"])
    results = [verdict(d, e, sign=-1) for d, e in zip(delta, se)]
    result = HOLDS if all(r == HOLDS for r in results) else FAILS if FAILS in results else OPEN
    ours = "; ".join(f"{edge} {s['mean'][edge]:.3f} vs {b['mean'][edge]:.3f}" for edge in s.index)
    difference = "; ".join(f"{edge} {d:+.3f} ± {e:.3f}" for edge, d, e in zip(s.index, delta, se))
    return _row(claim, f"KL (nats) {ours}", difference, result, "finished (seed 0 models)")


def claims_table(summary: pd.DataFrame, n_seeds: int | dict[str, int], voting: pd.DataFrame, plain: pd.DataFrame,
                 bench: str | Path, kl: pd.DataFrame | None, analysis: dict[str, str],
                 claims: tuple[Claim, ...] = CLAIMS) -> pd.DataFrame:
    """One row per claim (columns claim, paper, ours, difference, verdict, status, run, control, source).

    ``summary``: :func:`ld.results.study.seed_summary`; ``n_seeds``: the profile's seeds, or each run's
    (:func:`ld.layout.seeds_by_run`: the main seed alone for a run that ``study.seeded`` leaves out of
    the profile's other seeds); ``voting`` and
    ``plain``: :func:`ld.results.study.seed_runs` rows of the study runs' extra seeds (no teacher) with
    voting NMS and with the config's (every row of ``plain`` is a model the NMS row expects);
    ``bench``: the benchmark's JSON; ``kl``: the ambiguity analysis's KL table or None; ``analysis``:
    params.yaml's teacher, baseline and student of the analysis."""
    expected = len(plain)
    rows = []
    for claim in claims:
        if claim.kind == "ap":
            rows.append(_ap_row(claim, summary, n_seeds))
        elif claim.kind == "nms":
            rows.append(_nms_row(claim, voting, plain, expected))
        elif claim.kind in ("fps", "kl"):  # the analysis's LD student against its baseline
            claim = replace(claim, run=analysis["student"], control=analysis["baseline"])
            rows.append(_fps_row(claim, Path(bench), claim.control, claim.run) if claim.kind == "fps" else
                        _kl_row(claim, kl, claim.control, claim.run))
        else:
            raise ValueError(f"unknown claim kind {claim.kind!r}")
    return pd.DataFrame.from_records(rows)


def write_claims(table: pd.DataFrame, stem: str | Path, profile: str, seeds: list[int]) -> tuple[Path, Path]:
    """``stem.csv`` (the table as is) and ``stem.md``: a title naming the profile and seeds, :data:`RULE`,
    then the table (the runs compared and the sources left to the CSV)."""
    from ld.frames import markdown_table
    from ld.io import atomic_write_text

    stem = Path(stem)
    head = (f"# The paper's claims on the `{profile}` profile (seeds {', '.join(map(str, seeds))})\n\n"
            f"AP in %, mean ± standard deviation over seeds; differences ± their standard error. Verdicts: {RULE}\n\n")
    shown = table.drop(columns=["run", "control", "source"])
    md = atomic_write_text(stem.with_suffix(".md"), head + markdown_table(shown) + "\n")
    return md, atomic_write_text(stem.with_suffix(".csv"), table.to_csv(index=False))
