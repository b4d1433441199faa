"""The seed study: how much of a method's AP is the method and how much is the seed.

``params.yaml: study`` names the study's students: ``baselines`` (trained without a teacher) and
``students`` (distilled, each with its teacher as in ``distill``), and, per profile, the seeds and which
runs the other seeds train (``seeded``: every study run where a profile has no entry; smoke proves the
machinery on a few). The main pipeline already trained every run with ``params.yaml: seed`` (and the
teachers, once); the ``seeds_train@<run>`` / ``seeds_distill@<run>`` stages train one study run again with
each other seed (the same teacher, the pipeline's) and evaluate it twice, with the config's NMS and with
score-voting Cluster-DIoU-NMS (the claims table's NMS row compares the two on the same models):
:mod:`ld.engine.seed_study`. This module is the study's plan (its runs, seeds and files), which the tables
read too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ld.errors import ConfigError
from ld.profiles import get_profile

VOTING_NMS = "voting_cluster_diounms"  # the second evaluation of every extra seed (ld.ops.nms NMS_TYPES)


def study_runs(params: dict[str, Any]) -> list[dict[str, str]]:
    """``[{run, teacher}]`` of ``params['study']``: the baselines (teacher ``''``), then the students,
    each student's teacher checked against ``distill`` (the stage depends on the model it names)."""
    study = params.get("study") or {}
    if not (study.get("baselines") or study.get("students")):
        raise ConfigError("params.yaml: study lists no run (needs `baselines` and/or `students`)")
    distill = params.get("distill") or {}
    runs = [{"run": run, "teacher": ""} for run in study.get("baselines") or []]
    for run, spec in (study.get("students") or {}).items():
        if run not in distill:
            raise ConfigError(f"params.yaml: study.students.{run} is not a `distill` run")
        if spec["teacher"] != distill[run]["teacher"]:
            raise ConfigError(f"params.yaml: study.students.{run}.teacher is '{spec['teacher']}', but distill "
                              f"gives '{distill[run]['teacher']}' (they must agree: the stage depends on it)")
        runs.append({"run": run, "teacher": spec["teacher"]})
    return runs


def study_seeds(params: dict[str, Any], profile: str | None = None, run: str | None = None) -> list[int]:
    """The seeds of ``params['study']['seeds'][profile]``, the main ``seed`` first (only it where the
    profile has no entry); with ``run``, that run's: the main seed alone where the profile's
    ``study.seeded`` list leaves the run out."""
    profile = profile or params["profile"]
    get_profile(params, profile)  # a known profile
    study = params.get("study") or {}
    seeds = [int(s) for s in (study.get("seeds") or {}).get(profile, [])]
    main = int(params.get("seed", 0))
    seeded = (study.get("seeded") or {}).get(profile)
    if run is not None and seeded is not None and run not in seeded:
        return [main]
    return [main] + [s for s in dict.fromkeys(seeds) if s != main]


def seeds_by_run(params: dict[str, Any], profile: str | None = None) -> dict[str, list[int]]:
    """:func:`study_seeds` of each study run (and of its teacher: the main seed), the tables' ``seeds``."""
    runs = study_runs(params)
    by_run = {spec["teacher"]: study_seeds(params, profile)[:1] for spec in runs if spec["teacher"]}
    return {**by_run, **{spec["run"]: study_seeds(params, profile, spec["run"]) for spec in runs}}


def seed_metrics(out: str | Path, seed: int, nms: str | None = None) -> Path:
    """``<out>/seed<k>.json`` (the config's NMS) or ``<out>/seed<k>.<nms>.json``."""
    return Path(out) / (f"seed{seed}.json" if nms is None else f"seed{seed}.{nms}.json")
