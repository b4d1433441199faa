"""One run of the seed study (the ``seeds_train@<run>`` / ``seeds_distill@<run>`` / ``seeds_imitation@<run>``
stages, ``ld seeds``): each of the profile's other seeds (every seed, for a run of the study only) trained
and evaluated twice, with the config's NMS and with voting Cluster-DIoU-NMS (:mod:`ld.layout` says which
runs and seeds). All in the stage's one process, as
``ld train`` and ``ld eval`` would do them: a killed study resumes its training from the work dir (keyed
by config, teacher and data, so a finished seed only exports again)."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ld.errors import BadFileError, ConfigError, LDError
from ld.io import atomic_write_json
from ld.layout import VOTING_NMS, config_file, run_dir, seed_metrics, study_runs, trained_seeds


def run_seed_study(params: dict[str, Any], profile: str, run: str, *, out: str | Path, models: str | Path,
                   work_root: str | Path = "work", only: list[int] | None = None) -> list[Path]:
    """Train and evaluate the study run ``run`` with every extra seed (every seed: a run of the study only,
    :func:`ld.layout.trained_seeds`), or with the seeds of ``only`` among them (to spread a study over
    machines or sessions); returns the metrics files written: ``<out>/seed<k>.json`` and
    ``<out>/seed<k>.voting_cluster_diounms.json`` each (the format of ``results/<profile>/metrics``), the
    models in ``<models>/seed<k>``. ``<out>/seeds.json`` says which seeds the folder holds, rewritten as each
    seed is done: with ``only``, also those it listed before (none for a run the profile does not seed: a
    folder in git all the same, so a fresh clone's ``dvc status`` finds the stage's output)."""
    specs = {spec["run"]: spec for spec in study_runs(params)}
    if run not in specs:
        raise ConfigError(f"params.yaml: '{run}' is not a run of the study (study.baselines / students / "
                          f"imitation: {sorted(specs)})")
    spec = specs[run]
    every = trained_seeds(params, spec, profile)
    out, models = Path(out), Path(models)
    seeds, held = every, set()
    if only is not None:
        if unknown := sorted(set(only) - set(every)):
            raise ConfigError(f"--seeds {' '.join(map(str, unknown))}: not a seed that profile {profile} trains for "
                              f"'{run}' (params.yaml study.seeds / study.seeded / study.more_seeds: {every})")
        seeds, held = [seed for seed in every if seed in only], set(_listed_seeds(out / "seeds.json")) & set(every)
    out.mkdir(parents=True, exist_ok=True)  # the stage's outs, also where the profile has no other seed
    models.mkdir(parents=True, exist_ok=True)

    def write_held() -> None:
        atomic_write_json(out / "seeds.json", {"run": run, "profile": profile,
                                               "seeds": [seed for seed in every if seed in held]})

    write_held()
    teacher = str(run_dir(profile, spec["teacher"])) if spec["teacher"] else None
    written = []
    for seed in seeds:  # torch, mmdet and the rest imported where there is a seed to train
        from ld.engine.evaluate import evaluate_checkpoint
        from ld.engine.train import build_train_config, train

        model_dir = models / f"seed{seed}"
        print(f"== seed study: {run}, seed {seed}", flush=True)
        with _step(f"training {run} with seed {seed}"):
            cfg = build_train_config(str(config_file(run)), {**params, "seed": seed}, profile=profile,
                                     teacher_dir=teacher, work_root=work_root)
            train(cfg, model_dir)
        for nms in (None, VOTING_NMS):
            path = seed_metrics(out, seed, nms)
            with _step(f"evaluating {run} seed {seed}{' with ' + nms if nms else ''}"):
                evaluate_checkpoint(model_dir / "config.py", model_dir / "model.pth", path, nms=nms)
            written.append(path)
        held.add(seed)
        write_held()
    return written


def _listed_seeds(path: Path) -> list[int]:
    """The seeds an earlier ``seeds.json`` lists (none where there is none); a malformed one is a
    :class:`BadFileError` saying what to do."""
    if not path.exists():
        return []
    try:
        seeds = json.loads(path.read_text())["seeds"]
        if not (isinstance(seeds, list) and all(isinstance(seed, int) for seed in seeds)):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise BadFileError(f"{path}: not a seed study's seeds.json (a list under 'seeds'); remove it, or run "
                           "without --seeds to train every seed") from None
    return seeds


@contextmanager
def _step(what: str):
    """One step of the study: its error (printed as one line by ``ld``) names the step and says that
    running again resumes (a training resumes from its work folder)."""
    try:
        yield
    except LDError as err:
        raise LDError(f"seed study: {what} failed: {err}; run the same command again to resume from its last "
                      "checkpoint") from None
