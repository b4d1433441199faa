"""``ld diff A B``: the params that differ and each run's headline metrics in percent, A beside B, under 160
columns; a side is the workspace, a git revision or a DVC experiment's name (its ref under refs/exps/).
And what the README says ``dvc metrics diff`` shows of the same file."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from ld.errors import ConfigError
from ld.results.side_by_side import changed_params, side_by_side


def _git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _write(root, weight, metrics):
    (root / "params.yaml").write_text(yaml.safe_dump({"profile": "t", "ld": {"loss_weight": weight}}))
    (root / "results" / "t").mkdir(parents=True, exist_ok=True)
    (root / "results" / "t" / "summary.json").write_text(json.dumps(metrics, indent=2))


BASE = {"gfl_r18_1x": {"AP": 0.4012, "AP50": 0.58, "AP75": 0.43, "VOC_AP": 0.61},
        "ld_r18_gfl_r50_1x": {"AP": 0.4131, "AP50": 0.59, "AP75": 0.44, "VOC_AP": 0.62},
        "a_run_whose_name_is_much_longer_than_thirty_chars": {"AP": 0.1, "AP50": 0.2, "AP75": 0.05, "VOC_AP": 0.2}}


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repository with a commit (weight 0.25) and an experiment ``w0.5`` (a commit under refs/exps/)."""
    monkeypatch.chdir(tmp_path)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@t")
    _git(tmp_path, "config", "user.name", "t")
    _write(tmp_path, 0.25, BASE)
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "base")
    student = {**BASE, "ld_r18_gfl_r50_1x": {"AP": 0.4209, "AP50": 0.60, "AP75": 0.44, "VOC_AP": 0.6249}}
    _write(tmp_path, 0.5, student)
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "exp")
    _git(tmp_path, "update-ref", "refs/exps/ab/cdef0123/w0.5", "HEAD")
    _git(tmp_path, "reset", "-q", "--hard", "HEAD~1")
    return tmp_path


def test_two_experiments_side_by_side_in_percent_under_160_columns(repo):
    text = side_by_side("HEAD", "w0.5")
    assert "param ld.loss_weight: 0.25 -> 0.5" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith(("gfl_", "ld_"))}
    assert list(rows) == ["ld_r18_gfl_r50_1x"]  # the runs whose metrics differ
    cells = [c.split() for c in rows["ld_r18_gfl_r50_1x"].split("|")[1:]]
    assert cells == [["41.3", "42.1", "+0.8"], ["59.0", "60.0", "+1.0"], ["44.0", "44.0", "+0.0"],
                     ["62.0", "62.5", "+0.5"]]
    assert max(len(line) for line in text.splitlines()) < 160


def test_every_run_and_the_workspace(repo):
    text = side_by_side("w0.5", "workspace", every_run=True)
    assert "param ld.loss_weight: 0.5 -> 0.25" in text
    assert "gfl_r18_1x" in text and "a_run_whose_name_is_much_long~" in text
    assert max(len(line) for line in text.splitlines()) < 160
    assert "(no param differs)" in side_by_side("HEAD", "workspace")
    assert "every run's metrics agree" in side_by_side("HEAD", "workspace")


def test_an_unknown_side_is_named(repo):
    with pytest.raises(ConfigError, match="w9: no git revision or DVC experiment of that name"):
        side_by_side("HEAD", "w9")


def test_changed_params_are_dotted_keys_of_either_file():
    changes = changed_params({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}, "d": [1]})
    assert changes == [("a.c", 2, 3), ("d", None, [1])]


def test_dvc_metrics_diff_shows_what_the_readme_says(repo):
    """README: a row per run and metric that changed (``--all``: every one), COCO's fractions."""
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("metrics:\n  - results/t/summary.json\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "dvc")
    _write(repo, 0.5, {**BASE, "ld_r18_gfl_r50_1x": {**BASE["ld_r18_gfl_r50_1x"], "AP": 0.4209}})
    changed = subprocess.run([*dvc, "metrics", "diff", "HEAD"], cwd=repo, check=True, capture_output=True,
                             text=True).stdout
    assert [line.split()[1:] for line in changed.splitlines()[1:]] == [["ld_r18_gfl_r50_1x.AP", "0.4131", "0.4209",
                                                                        "0.0078"]]
    every = subprocess.run([*dvc, "metrics", "diff", "HEAD", "--all"], cwd=repo, check=True, capture_output=True,
                           text=True).stdout
    assert len(every.splitlines()) == 1 + 3 * 4
    assert "ld_r18_gfl_r50_1x.AP50" in every
