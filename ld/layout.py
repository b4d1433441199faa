"""The pipeline's names: where each file of a profile lives, which DVC stage writes it, and which runs
and seeds the seed study trains. The one place these are written (dvc.yaml spells the same paths; its
tests check them against this module); imports nothing of the project but its errors.

Paths, relative to the repository::

    pipelines/configs/<run>.py                      a run's config (a paper-table row)
    models/<profile>/<run>/                         a run's exported folder: train@, distill@ or teacher@<run>
    models/<profile>/seeds/<run>/seed<k>/           the run's other seeds: seeds_train@ / seeds_distill@<run>
    results/<profile>/metrics/<run>.json            its metrics: eval@, eval_distill@ or eval_teacher@<run>
    results/<profile>/seeds/<run>/seed<k>[.<nms>].json  the other seeds' metrics (the seeds stages)
    models/<profile>/seeds/<run>/seed<k>/           every seed of a run of the study only: seeds_imitation@<run>

The seed study (``params.yaml: study``) names its runs: ``baselines`` (trained without a teacher),
``students`` (distilled, each with its teacher as in ``distill``) and ``imitation`` (feature imitation
alone, the paper's thesis rows: runs of the study only), and, per profile, the seeds and which runs the
other seeds train (``seeded``: every study run where a profile has no entry). The main pipeline trains
every run of ``train`` and ``distill`` with ``params.yaml: seed``; the seeds stages train each study run
again with every other seed, and a run of the study only with every seed, the main one too, where the
profile seeds it (:mod:`ld.engine.seed_study`); each model is evaluated twice, with the config's NMS and
with :data:`VOTING_NMS`.
"""
from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from ld.errors import ConfigError

CONFIGS = Path("pipelines/configs")
MODELS = Path("models")
RESULTS = Path("results")

# The names params.yaml, the configs and the `ld` command choose from; the modules that act on them import
# them from here (and params.yaml's check, ld.params_check, without importing those modules).
LAYOUTS = ("synth", "coco", "voc")  # a profile's data.layout (ld.data.prepare)
TEACHER_PRECISIONS = ("auto", "fp32", "bf16")  # ld.teacher_precision (ld.models.distiller.teacher_dtype)
# params.yaml's paper_tables: the paper's tables ld.results.paper.TABLES reproduces, one dvc stage each
PAPER_TABLES = ("gflv1_coco", "selfld_coco", "gflv2_coco", "voc", "full_ld_coco", "detectors_coco", "imitation_coco")
ANALYSIS_ROLES = ("teacher", "baseline", "student")  # params.yaml's analysis: the runs the ambiguity notebook reads
# The test-time NMS a run may choose (`ld eval --nms`, a config's test_cfg.nms type): mmdet's plain one, and
# score-voting Cluster-DIoU-NMS (ld.ops.voting_cluster_diou_nms, registered by ld.models.voting_nms), which
# also evaluates every extra seed of the seed study a second time
VOTING_NMS = "voting_cluster_diounms"
NMS_TYPES = ("nms", VOTING_NMS)


def config_file(run: str, configs_dir: str | Path = CONFIGS) -> Path:
    """``pipelines/configs/<run>.py``: the run's config."""
    return Path(configs_dir) / f"{run}.py"


def run_dir(profile: str, run: str) -> Path:
    """``models/<profile>/<run>``: the folder a run's training (or a teacher's import) exports."""
    return MODELS / profile / run


def seeds_models_dir(profile: str, run: str) -> Path:
    """``models/<profile>/seeds/<run>``: the models of the run's other seeds, ``seed<k>/`` each."""
    return MODELS / profile / "seeds" / run


def results_dir(profile: str) -> Path:
    """``results/<profile>``: the profile's metrics, tables, figures and reports."""
    return RESULTS / profile


def seeds_results_dir(profile: str, run: str) -> Path:
    """``results/<profile>/seeds/<run>``: the metrics of the run's other seeds (:func:`seed_metrics`)."""
    return RESULTS / profile / "seeds" / run


def seed_metrics(out: str | Path, seed: int, nms: str | None = None) -> Path:
    """``<out>/seed<k>.json`` (the config's NMS) or ``<out>/seed<k>.<nms>.json``."""
    return Path(out) / (f"seed{seed}.json" if nms is None else f"seed{seed}.{nms}.json")


def eval_stage(run: str, teacher: str = "", imported: bool = False) -> str:
    """The DVC stage that writes ``results/<profile>/metrics/<run>.json``: ``eval_teacher@<run>`` for an
    imported teacher, ``eval_distill@<run>`` for a distilled run (one with a teacher), else ``eval@<run>``."""
    return f"eval_teacher@{run}" if imported else f"eval_distill@{run}" if teacher else f"eval@{run}"


# The seed study's sections (params.yaml: study) -> the DVC stage that trains a run's seeds; the runs of
# STUDY_ONLY are trained by no main-pipeline stage: their seeds stage trains the main seed too
SEEDS_STAGES = {"baselines": "seeds_train", "students": "seeds_distill", "imitation": "seeds_imitation"}
STUDY_ONLY = "imitation"


def seeds_stage(run: str, section: str) -> str:
    """The DVC stage that trains and evaluates the seeds of the study run ``run`` of ``section`` (a key of
    :data:`SEEDS_STAGES`): ``seeds_train@<run>``, ``seeds_distill@<run>`` or ``seeds_imitation@<run>``."""
    return f"{SEEDS_STAGES[section]}@{run}"


def making_stage(folder: str | PurePath, params: dict[str, Any]) -> str | None:
    """The DVC stage that writes the run folder ``models/<profile>/<run>`` (``train@<run>`` for a trained
    row, ``distill@<run>`` for a student, ``teacher@<run>`` for an imported teacher) or a study run's
    seeds, ``models/<profile>/seeds/<run>/...`` (:func:`seeds_stage`); None for any other path."""
    parts = PurePath(folder).parts
    if len(parts) < 3 or parts[0] != MODELS.name or (parts[2] == "seeds" and len(parts) < 4):
        return None
    if parts[2] == "seeds":
        study = params.get("study") or {}
        return next((seeds_stage(parts[3], section) for section in SEEDS_STAGES
                     if parts[3] in (study.get(section) or [])), None)
    run = parts[2]
    for stage, runs in (("train", params.get("train") or []), ("distill", params.get("distill") or {}),
                        ("teacher", params.get("teachers") or {})):
        if run in runs:
            return f"{stage}@{run}"
    return None


def study_runs(params: dict[str, Any]) -> list[dict[str, str]]:
    """``[{run, teacher, section}]`` of ``params['study']``: the baselines (teacher ``''``), the students,
    each student's teacher checked against ``distill`` (the stage depends on the model it names), then the
    runs of the study only (section :data:`STUDY_ONLY`: feature imitation alone, each with its teacher)."""
    study = params.get("study") or {}
    if not any(study.get(section) for section in SEEDS_STAGES):
        raise ConfigError("params.yaml: study lists no run (needs `baselines`, `students` and/or `imitation`)")
    distill = params.get("distill") or {}
    runs = [{"run": run, "teacher": "", "section": "baselines"} for run in study.get("baselines") or []]
    for run, spec in (study.get("students") or {}).items():
        if run not in distill:
            raise ConfigError(f"params.yaml: study.students.{run} is not a `distill` run")
        if spec["teacher"] != distill[run]["teacher"]:
            raise ConfigError(f"params.yaml: study.students.{run}.teacher is '{spec['teacher']}', but distill "
                              f"gives '{distill[run]['teacher']}' (they must agree: the stage depends on it)")
        runs.append({"run": run, "teacher": spec["teacher"], "section": "students"})
    runs += [{"run": run, "teacher": spec["teacher"], "section": STUDY_ONLY}
             for run, spec in (study.get(STUDY_ONLY) or {}).items()]
    return runs


def study_seeds(params: dict[str, Any], profile: str | None = None, run: str | None = None) -> list[int]:
    """The seeds of ``params['study']['seeds'][profile]``, the main ``seed`` first (only it where the
    profile has no entry); with ``run``, that run's: the main seed alone where the profile's
    ``study.seeded`` list leaves the run out, or none for a run of the study only (nothing trains it), and
    ``study.more_seeds[profile].seeds`` after the others where that entry's ``runs`` list it (the runs of
    the claims that the profile's seeds leave undecided)."""
    profile = profile or params["profile"]
    if profile not in params["profiles"]:
        raise ConfigError(f"params.yaml: unknown profile '{profile}'; known profiles: {sorted(params['profiles'])}")
    study = params.get("study") or {}
    seeds = [int(s) for s in (study.get("seeds") or {}).get(profile, [])]
    main = int(params.get("seed", 0))
    seeded = (study.get("seeded") or {}).get(profile)
    if run is not None and seeded is not None and run not in seeded:
        return [] if run in (study.get(STUDY_ONLY) or {}) else [main]
    more = (study.get("more_seeds") or {}).get(profile) or {}
    if run is not None and run in (more.get("runs") or []):
        seeds += [int(s) for s in more.get("seeds") or []]
    return [main] + [s for s in dict.fromkeys(seeds) if s != main]


def trained_seeds(params: dict[str, Any], spec: dict[str, str], profile: str | None = None) -> list[int]:
    """The seeds the seeds stage of ``spec`` (one of :func:`study_runs`) trains: every seed of the run
    (:func:`study_seeds`) but the main one, which the main pipeline trains; all of them for a run of the
    study only."""
    seeds = study_seeds(params, profile, spec["run"])
    return seeds if spec["section"] == STUDY_ONLY else seeds[1:]


def seeds_by_run(params: dict[str, Any], profile: str | None = None) -> dict[str, list[int]]:
    """:func:`study_seeds` of each study run (and of its teacher: the main seed), the tables' ``seeds``."""
    runs = study_runs(params)
    by_run = {spec["teacher"]: study_seeds(params, profile)[:1] for spec in runs if spec["teacher"]}
    return {**by_run, **{spec["run"]: study_seeds(params, profile, spec["run"]) for spec in runs}}
