"""The seed study's runs are paired by construction: with the same seed, a student starts from exactly the
initial weights of the baseline of its architecture (the teacher's building draws from a fork of the random
generators, ld.models.distiller), so a claim's difference compares the method, not two initialisations."""
from __future__ import annotations

import pytest
import torch

from ld.results.study import study_rows

pytestmark = pytest.mark.usefixtures("repo_root")


def _initial_weights(run: str, params, tmp_path, teacher=None) -> dict[str, torch.Tensor]:
    """The weights mmengine's runner trains from: it seeds the generators, builds the model and initialises it
    (what `ld train` runs, up to its first iteration)."""
    from ld.engine.console import QuietRunner
    from ld.engine.train import build_train_config

    cfg = build_train_config(f"pipelines/configs/{run}.py", params, profile="smoke", teacher_dir=teacher,
                             work_root=tmp_path / "work")
    cfg.work_dir = str(tmp_path / "runs" / run)
    cfg.visualizer.pop("name", None)  # as ld.engine.train.train: a visualizer of the runner's own
    runner = QuietRunner.from_cfg(cfg)
    runner._init_model_weights()
    return runner.model.state_dict()


def test_every_study_student_starts_from_its_baselines_initial_weights(params, tmp_path):
    from ld.engine.train import export_initial

    rows = study_rows(params)
    baselines = {row["model"]: row["run"] for row in rows if row["role"] == "baseline"}
    students = [row for row in rows if row["role"] == "student"]
    imitation = params["study"]["imitation"]
    assert len(students) == len(params["study"]["students"]) + len(imitation)
    assert all(r["model"] in baselines for r in students)
    # the runs of the study only differ in imitation method, which draws nothing: one per teacher
    one_each = {row["teacher"]: row["run"] for row in students if row["run"] in imitation}
    students = [row for row in students if row["run"] not in imitation or row["run"] in one_each.values()]
    teachers = {run: export_initial(f"pipelines/configs/{run}.py", params, tmp_path / "teachers" / run,
                                    profile="smoke", seed=7)
                for run in {row["teacher"] for row in students}}  # each teacher once
    initial = {run: _initial_weights(run, params, tmp_path) for run in set(baselines.values())}
    for row in students:
        base = initial[baselines[row["model"]]]
        student = _initial_weights(row["run"], params, tmp_path, teachers[row["teacher"]])
        differ = [k for k in base if not torch.equal(base[k], student[k])]
        assert not differ, f"{row['run']}: {len(differ)} of {len(base)} tensors differ from {baselines[row['model']]}"
        assert set(student) - set(base) <= {k for k in student if "imitation_adapter" in k}  # no other module


def test_a_different_seed_gives_different_initial_weights(params, tmp_path):
    a = _initial_weights("gfl_r18_1x", params, tmp_path / "a")
    b = _initial_weights("gfl_r18_1x", {**params, "seed": 1}, tmp_path / "b")
    assert any(not torch.equal(a[k], b[k]) for k in a)
