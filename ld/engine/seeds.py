"""The seed study: how much of a method's AP is the method and how much is the seed.

``params.yaml: study`` names the study's students: ``baselines`` (trained without a teacher) and
``students`` (distilled, each with its teacher as in ``distill``), and, per profile, the seeds. The main
pipeline already trained every run with ``params.yaml: seed`` (and the teachers, once); the
``seeds_train@<run>`` / ``seeds_distill@<run>`` stages train one study run again with each other seed
(the same teacher, the pipeline's) and evaluate it twice, with the config's NMS and with score-voting
Cluster-DIoU-NMS (the claims table's NMS row compares the two on the same models). One subprocess per
train and evaluation, so each is an ordinary ``ld train`` / ``ld eval`` that resumes from its work dir
if killed (its work dir is keyed by config, teacher and data, so a finished seed only exports again).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from ld.errors import ConfigError, LDError
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


def study_seeds(params: dict[str, Any], profile: str | None = None) -> list[int]:
    """The seeds of ``params['study']['seeds'][profile]``, the main ``seed`` first (only it where the
    profile has no entry)."""
    profile = profile or params["profile"]
    get_profile(params, profile)  # a known profile
    seeds = [int(s) for s in ((params.get("study") or {}).get("seeds") or {}).get(profile, [])]
    main = int(params.get("seed", 0))
    return [main] + [s for s in dict.fromkeys(seeds) if s != main]


def seed_metrics(out: str | Path, seed: int, nms: str | None = None) -> Path:
    """``<out>/seed<k>.json`` (the config's NMS) or ``<out>/seed<k>.<nms>.json``."""
    return Path(out) / (f"seed{seed}.json" if nms is None else f"seed{seed}.{nms}.json")


def run_seed_study(params: dict[str, Any], profile: str, run: str, *, params_file: str | Path = "params.yaml",
                   out: str | Path, models: str | Path, work_root: str | Path = "work") -> list[Path]:
    """Train and evaluate the study run ``run`` with every extra seed; returns the metrics files
    written: ``<out>/seed<k>.json`` and ``<out>/seed<k>.voting_cluster_diounms.json`` each (the format of
    ``results/<profile>/metrics``), the models in ``<models>/seed<k>``."""
    specs = {spec["run"]: spec for spec in study_runs(params)}
    if run not in specs:
        raise ConfigError(f"params.yaml: '{run}' is not a run of the study (study.baselines / study.students: "
                          f"{sorted(specs)})")
    spec, seeds = specs[run], study_seeds(params, profile)[1:]
    out, models = Path(out), Path(models)
    out.mkdir(parents=True, exist_ok=True)  # the stage's outs, also where the profile has no other seed
    models.mkdir(parents=True, exist_ok=True)
    ld = [sys.executable, "-m", "ld.cli", "--params", str(params_file), "--profile", profile]
    written = []
    for seed in seeds:
        model_dir = models / f"seed{seed}"
        print(f"== seed study: {run}, seed {seed}", flush=True)
        cmd = [*ld, "train", f"pipelines/configs/{run}.py", "--out", str(model_dir), "--seed", str(seed),
               "--work-root", str(work_root)]
        if spec["teacher"]:
            cmd += ["--teacher", str(Path("models") / profile / spec["teacher"])]
        _run(cmd, f"training {run} with seed {seed}")
        for nms in (None, VOTING_NMS):
            path = seed_metrics(out, seed, nms)
            _run([*ld, "eval", str(model_dir / "config.py"), str(model_dir / "model.pth"), "--out", str(path),
                  *(["--nms", nms] if nms else [])], f"evaluating {run} seed {seed}{' with ' + nms if nms else ''}")
            written.append(path)
    return written


def _run(cmd: list[str], what: str) -> None:
    """Run one step of the study; a failed step is one error naming it (its own message is printed above),
    not a traceback: run again to resume (a training resumes from its work folder)."""
    code = subprocess.run(cmd).returncode
    if code:
        raise LDError(f"seed study: {what} failed (exit {code}, its error above); run the same command again "
                      "to resume from its last checkpoint")
