"""The seed study: how much of a method's AP is the method and how much is the seed.

``params.yaml: study`` names a teacher, one run per method (baseline, LD, LD + VLR, Self-LD) and, per
profile, the seeds to compare. The main pipeline already trained every method with
``params.yaml: seed``; this trains the study's runs again with each other seed (same teacher, the one
the main pipeline trained) and evaluates them, one subprocess per run so each is an ordinary
``ld train`` / ``ld eval`` that resumes from its work dir if killed.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from ld.errors import ConfigError
from ld.profiles import get_profile

STUDY_METHODS: tuple[tuple[str, str], ...] = (
    ("baseline", "baseline"), ("ld", "LD"), ("ld_vlr", "LD + VLR"), ("selfld", "Self-LD"))


def study_runs(params: dict[str, Any]) -> list[dict[str, str]]:
    """``[{key, method, run, teacher}]`` of ``params['study']``, checked against ``distill``: each distilled
    method must distil from the study's teacher, Self-LD from the study's baseline."""
    study = params.get("study") or {}
    missing = [key for key, _ in STUDY_METHODS if key not in study] + ([] if "teacher" in study else ["teacher"])
    if missing:
        raise ConfigError(f"params.yaml: study lacks {missing} (needs teacher, baseline, ld, ld_vlr, selfld)")
    distill = params.get("distill") or {}
    runs = []
    for key, method in STUDY_METHODS:
        run = study[key]
        teacher = ""
        if key != "baseline":
            if run not in distill:
                raise ConfigError(f"params.yaml: study.{key} is '{run}', which is not a `distill` run")
            teacher = distill[run]["teacher"]
            expected = study["baseline"] if key == "selfld" else study["teacher"]
            if teacher != expected:
                raise ConfigError(f"params.yaml: study.{key} ('{run}') distils from '{teacher}', but the study "
                                  f"needs '{expected}' (the seeds stage depends on that model only)")
        runs.append({"key": key, "method": method, "run": run, "teacher": teacher})
    return runs


def study_seeds(params: dict[str, Any], profile: str | None = None) -> list[int]:
    """The seeds of ``params['study']['seeds'][profile]``, the main ``seed`` first (only it where the
    profile has no entry)."""
    profile = profile or params["profile"]
    get_profile(params, profile)  # a known profile
    seeds = [int(s) for s in ((params.get("study") or {}).get("seeds") or {}).get(profile, [])]
    main = int(params.get("seed", 0))
    return [main] + [s for s in dict.fromkeys(seeds) if s != main]


def run_seed_study(params: dict[str, Any], profile: str, *, params_file: str | Path = "params.yaml",
                   out: str | Path, models: str | Path, work_root: str | Path = "work") -> list[Path]:
    """Train and evaluate every study run with every extra seed; returns the metrics files written
    (``<out>/<run>/seed<k>.json``, the same format as ``results/<profile>/metrics``)."""
    out, models = Path(out), Path(models)
    runs, seeds = study_runs(params), study_seeds(params, profile)[1:]
    out.mkdir(parents=True, exist_ok=True)
    models.mkdir(parents=True, exist_ok=True)
    ld = [sys.executable, "-m", "ld.cli", "--params", str(params_file), "--profile", profile]
    written = []
    for seed in seeds:
        for spec in runs:
            model_dir = models / spec["run"] / f"seed{seed}"
            print(f"== seed study: {spec['method']} ({spec['run']}), seed {seed}", flush=True)
            cmd = [*ld, "train", f"pipelines/configs/{spec['run']}.py", "--out", str(model_dir),
                   "--seed", str(seed), "--work-root", str(work_root)]
            if spec["teacher"]:
                cmd += ["--teacher", str(Path("models") / profile / spec["teacher"])]
            subprocess.run(cmd, check=True)
            metrics = out / spec["run"] / f"seed{seed}.json"
            subprocess.run([*ld, "eval", str(model_dir / "config.py"), str(model_dir / "model.pth"),
                            "--out", str(metrics)], check=True)
            written.append(metrics)
    return written
