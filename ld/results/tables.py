"""Results tables: metrics JSON of each run -> one DataFrame -> Markdown + CSV.

The metrics JSON keeps COCO's fractions (0.40123); every table a person reads (Markdown, CSV, a
notebook's table) shows AP in percent with one decimal as the paper prints it (40.1), the unit in the
column header ('AP (%)'), through :func:`percent` / :func:`format_ap`; figures plot :func:`ap_points`,
colour a run by its role (:data:`ROLE_COLORS`, :func:`run_role`), tell many runs apart with
:func:`distinct_colors` and wrap long titles to the figure's width (:func:`wrap_title`).
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

from ld.errors import BadFileError
from ld.frames import percent
from ld.layout import CONFIGS, config_file, eval_stage

TABLE_METRICS: tuple[str, ...] = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")


DISTILL_TERMS = (("ld_main", "Main LD"), ("ld_vlr", "VLR LD"), ("kd_main", "Main KD"))
IMITATION_LABELS = {"fitnet": "FitNets", "inside_gt": "inside-GT", "finegrained": "fine-grained",
                    "decouple": "DeFeat", "gibox": "GI"}  # ld.ops.imitation's methods, as the paper names them
DETECTOR_FAMILIES = (("ATSS", "ATSS"), ("FCOS", "FCOS"), ("Retina", "RetinaNet"), ("v2", "GFocalV2"))


def backbone_label(backbone) -> str:
    """The paper's name of a backbone config: 'R-50', 'X-101-32x4d-DCN', 'R2-101-DCN', ..."""
    kind = backbone.get("type", "ResNet")
    label = {"ResNeXt": f"X-{backbone.depth}-{backbone.get('groups')}x{backbone.get('base_width')}d",
             "Res2Net": f"R2-{backbone.depth}"}.get(kind, f"R-{backbone.depth}")
    return label + ("-DCN" if backbone.get("dcn") else "")


def describe_config(config: str | Path) -> tuple[str, str]:
    """``(model, method)`` of a row config, e.g. ``('GFocalV1 R-18 1x', 'Main LD + VLR LD')``;
    the method is empty for a detector trained without distillation."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(config))
    head = cfg.model.bbox_head
    family = next((name for key, name in DETECTOR_FAMILIES if key in head.type), "GFocalV1")
    model = f"{family} {backbone_label(cfg.model.backbone)} {cfg.get('schedule', '1x')}"
    terms = [label for key, label in DISTILL_TERMS if head.get(key, {}).get("enabled")]
    if head.get("imitation", {}).get("enabled"):
        terms.append(f"{IMITATION_LABELS[head.imitation.method]} imitation")
    return model, " + ".join(terms)


def runs_from_params(params: dict[str, Any], configs_dir: str | Path = CONFIGS) -> list[dict[str, str]]:
    """Every run of ``params.yaml``, in table order: ``{run, model, method, teacher}`` each.

    Runs come from the params (never from globbing ``results/``, which may hold stale files). A
    trained run is the 'baseline' of the distilled runs of the same model, else a 'teacher' if it
    teaches ('imported teacher' for a run of ``teachers``, released weights); a distilled run's method
    lists its LD terms, marked 'Self-LD' when the teacher is the same model.
    """
    configs_dir = Path(configs_dir)
    distill = params.get("distill") or {}
    teachers = {spec["teacher"] for spec in distill.values()}
    imported = list(params.get("teachers") or {})
    trained = [*(params.get("train") or []), *imported]
    models = {run: describe_config(config_file(run, configs_dir)) for run in [*trained, *distill]}
    distilled_models = {models[run][0] for run in distill}
    rows = [{"run": run, "model": models[run][0], "teacher": "",
             "method": ("imported teacher" if run in imported else
                        "teacher" if run in teachers and models[run][0] not in distilled_models else "baseline")}
            for run in trained]
    for run, spec in distill.items():
        model, method = models[run]
        if models.get(spec["teacher"], ("",))[0] == model:
            method = f"Self-LD ({method})"
        rows.append({"run": run, "model": model, "method": method, "teacher": spec["teacher"]})
    return rows


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_metrics(path: str | Path, stage: str | None = None) -> dict[str, float] | None:
    """The COCO metrics (the ``coco`` block) of a metrics file, or None if there is no such file
    (:func:`read_metrics_file`)."""
    document = read_metrics_file(path, stage)
    return None if document is None else document["coco"]


def read_metrics_file(path: str | Path, stage: str | None = None) -> dict[str, Any] | None:
    """A metrics file ``{"coco": {...}, "voc": {...}, ...}`` as a whole, or None if there is no such file. A
    file that is not valid JSON, has no ``coco`` block, or has no numeric ``coco.AP`` (or a non-numeric table
    metric) is a :class:`BadFileError` naming the file, the field and ``stage``, the DVC stage that writes it
    (``dvc repro <stage>``)."""
    path = Path(path)
    if not path.is_file():
        return None
    rerun = (f"It is written by `dvc repro {stage}`: rerun that stage" if stage else
             "It is written by the run's evaluation stage (`dvc repro eval@<run>`, `eval_distill@<run>` or "
             "`eval_teacher@<run>`): rerun it")
    rerun += ", or delete the file (the run then shows as 'not run') and rerun the pipeline."
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadFileError(f"{path} is not a metrics JSON file ({err}). {rerun}") from err
    if not isinstance(data, dict):
        raise BadFileError(f"{path}: a metrics file is a JSON object {{\"coco\": {{...}}, \"voc\": {{...}}}}, "
                           f"got a {type(data).__name__}. {rerun}")
    coco = data.get("coco")
    if not isinstance(coco, dict):
        problem = "has no 'coco' block" if coco is None else f"field 'coco' is a {type(coco).__name__}, not an object"
        raise BadFileError(f"{path}: {problem} (the COCO metrics the tables read). {rerun}")
    if "AP" not in coco:
        raise BadFileError(f"{path}: field 'coco.AP' is missing. {rerun}")
    bad = [k for k in TABLE_METRICS if k in coco and not _is_number(coco[k])]
    if bad:
        raise BadFileError(f"{path}: field 'coco.{bad[0]}' is {coco[bad[0]]!r}, not a number. {rerun}")
    return data


def _read_metrics(metrics_dir: Path, run: str, stage: str | None = None) -> dict[str, float] | None:
    """The COCO metrics of ``metrics_dir/<run>.json`` (see :func:`read_metrics`), if it exists."""
    return read_metrics(metrics_dir / f"{run}.json", stage)


def metrics_table(metrics_dir: str | Path, runs: list[dict[str, str]]) -> pd.DataFrame:
    """One row per run with its COCO metrics and its teacher's AP; a run without a metrics file is
    marked 'not run' and left empty; a malformed metrics file is a :class:`BadFileError`."""
    metrics_dir = Path(metrics_dir)
    stages = {row["run"]: eval_stage(row["run"], row["teacher"], row["method"] == "imported teacher")
              for row in runs}
    records = []
    for row in runs:
        metrics = _read_metrics(metrics_dir, row["run"], stages[row["run"]])
        teacher = _read_metrics(metrics_dir, row["teacher"], stages.get(row["teacher"])) if row["teacher"] else None
        record = {**row, **{k: (metrics or {}).get(k) for k in TABLE_METRICS},
                  "teacher_AP": (teacher or {}).get("AP"), "status": "ok" if metrics else "not run"}
        records.append(record)
    return pd.DataFrame.from_records(records, columns=["run", "model", "method", "teacher", *TABLE_METRICS,
                                                      "teacher_AP", "status"])


def runs_shown(table: pd.DataFrame) -> pd.DataFrame:
    """The runs table of :func:`metrics_table` as people read it: every metric in % ('AP (%)', ...)."""
    return percent(table, [*TABLE_METRICS, "teacher_AP"])



# ---------------------------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------------------------

# One colour per role of a run, the same in every figure that colours runs by role (runs_ap, compare/ap,
# seeds_ap; ld.results.ambiguity_figure.ROLE_COLORS repeats it for the ambiguity notebook): teachers grey.
ROLES: tuple[str, ...] = ("teacher", "baseline", "student")
ROLE_COLORS: dict[str, str] = {"teacher": "#7f7f7f", "baseline": "#1f77b4", "student": "#2ca02c"}
ROLE_LABELS: dict[str, str] = {"teacher": "teacher", "baseline": "baseline (no teacher)",
                               "student": "distilled student"}


def run_role(method: str) -> str:
    """The role of a run from its ``method`` (:func:`runs_from_params`): 'teacher' (an imported one too),
    'baseline', else 'student' (a distilled run, Self-LD included)."""
    return "teacher" if method in ("teacher", "imported teacher") else "baseline" if method == "baseline" else "student"


def role_legend(roles=ROLES, labels: dict[str, str] | None = None) -> tuple[list, list[str]]:
    """Legend ``(handles, labels)`` of :data:`ROLE_COLORS` for ``roles``: a filled square per role, named by
    ``labels`` (default :data:`ROLE_LABELS`)."""
    from matplotlib.patches import Patch

    labels = {**ROLE_LABELS, **(labels or {})}
    return [Patch(color=ROLE_COLORS[r]) for r in roles], [labels[r] for r in roles]


def distinct_colors(n: int) -> list[str]:
    """``n`` colours a reader tells apart, as hex strings, none of them grey or black (a teacher's colour in
    :data:`ROLE_COLORS`, a baseline's or a reference's in a curves figure): matplotlib's ten less its grey
    for up to 9, else ``n`` evenly spaced hues of a perceptual rainbow (turbo; up to 20 no two closer than
    tab20's two light blues)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    if n <= 9:
        return [to_hex(c) for i, c in enumerate(colormaps["tab10"].colors) if i != 7][:n]
    return [to_hex(colormaps["turbo"](0.05 + 0.9 * i / (n - 1))) for i in range(n)]


def wrap_title(text: str, width_in: float, fontsize: float = 9) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize`` points (a character is taken
    as 0.62 of the font size wide, DejaVu Sans' widest average): a figure's title is never clipped."""
    chars = max(20, int(width_in * 72 / (0.62 * fontsize)))
    return "\n".join(textwrap.wrap(text, chars)) if len(text) > chars else text
