"""`ld compare`: two result trees agree metric by metric within a stated tolerance (ld/results/compare.py)."""
import json
import math
import shutil
import subprocess
import sys

import pytest

from ld.results.compare import (
    Tree,
    compare_curve,
    compare_metrics,
    compare_trees,
    flat_numbers,
    read_curve,
    seed_spread,
    summary,
)
from tests.conftest import REPO

SEEDS_CSV = ("model,method,run,teacher,n,AP mean (%),AP std (%),AP min (%),AP max (%)\n"
             "T,teacher,t,,1,30.0,,30.0,30.0\n"
             "A,baseline,a,,3,20.0,0.3,19.7,20.3\n"
             "B,Main LD,b,t,2,21.0,0.4,20.7,21.3\n")


def _tree(root, ap=0.2, loss=(2.0, 1.5, 1.0), seeds_csv=SEEDS_CSV):
    (root / "metrics").mkdir(parents=True)
    (root / "metrics" / "a.json").write_text(json.dumps({"coco": {"AP": ap, "AP50": 0.4},
                                                         "voc": {"AP_by_iou": {"AP50": 0.5}}}))
    (root / "seeds" / "a").mkdir(parents=True)
    (root / "seeds" / "a" / "seed1.json").write_text(json.dumps({"coco": {"AP": ap + 0.01}}))
    curve = root / "live" / "a" / "plots" / "metrics" / "train"
    curve.mkdir(parents=True)
    (curve / "loss.tsv").write_text("step\tloss\n" + "".join(f"{5 * (i + 1)}\t{v}\n" for i, v in enumerate(loss)))
    (root / "tables").mkdir()
    (root / "tables" / "seeds.csv").write_text(seeds_csv)
    return root


def test_seed_spread_pools_the_runs_with_two_seeds_or_more():
    # RMS of 0.3 and 0.4 (the teacher, n = 1, has none): sqrt((0.09 + 0.16) / 2) = 0.35355 %, as a fraction
    assert seed_spread(SEEDS_CSV) == pytest.approx(math.sqrt(0.125) / 100)
    assert seed_spread("model,n,AP std (%)\nT,1,\n") is None


def test_flat_numbers_and_curves():
    assert flat_numbers({"coco": {"AP": 0.1, "n": 3, "ok": True, "s": "x"}, "voc": {"a": {"b": -1.0}}}) == {
        "coco.AP": 0.1, "coco.n": 3.0, "voc.a.b": -1.0}
    assert read_curve("step\tloss\n5\t2.5\n10\t2.25\n") == {5: 2.5, 10: 2.25}


def test_metrics_within_and_beyond_the_tolerance():
    rows = compare_metrics({"AP": 0.20, "AP50": 0.40}, {"AP": 0.205, "AP50": 0.42, "AR": 0.1}, "m.json", tol=0.01)
    by_key = {r.key: r for r in rows}
    assert by_key["AP"].ok and by_key["AP"].diff == pytest.approx(0.005)
    assert not by_key["AP50"].ok and by_key["AP50"].diff == pytest.approx(0.02)
    assert not by_key["AR"].ok and by_key["AR"].a is None  # in one file only


def test_a_curve_is_held_to_its_worst_step():
    a = {5: 2.0, 10: 1.0, 15: 0.5}
    row = compare_curve(a, {5: 2.0, 10: 1.08, 15: 0.52}, "loss.tsv", rtol=0.1)
    assert row.ok and row.key == "step 10" and row.diff == pytest.approx(0.08 / 1.08, abs=1e-5)
    assert not compare_curve(a, {5: 2.0, 10: 1.2, 15: 0.5}, "loss.tsv", rtol=0.1).ok  # 0.2 / 1.2 = 0.167
    assert not compare_curve(a, {5: 2.0, 10: 1.0}, "loss.tsv", rtol=0.1).ok  # other steps
    assert not compare_curve(a, {5: 2.0, 10: 1.0, 15: float("nan")}, "loss.tsv", rtol=0.1).ok
    assert compare_curve({5: 0.0}, {5: 5e-7}, "lr.tsv", rtol=0.0).ok  # the absolute floor, 1e-6


def test_trees_agree_within_twice_the_seed_spread(tmp_path):
    a = _tree(tmp_path / "a")
    spread = math.sqrt(0.125) / 100  # 0.0035355: the tolerance is 0.0070711
    rows, tol = compare_trees(str(a), str(_tree(tmp_path / "b", ap=0.2 + 1.9 * spread, loss=(2.0, 1.6, 1.05))))
    assert tol == pytest.approx(2 * spread) and all(r.ok for r in rows)
    assert {r.file for r in rows} == {"metrics/a.json", "seeds/a/seed1.json", "live/a/plots/metrics/train/loss.tsv"}
    rows, _ = compare_trees(str(a), str(_tree(tmp_path / "c", ap=0.2 + 2.1 * spread)))
    assert {(r.file, r.key) for r in rows if not r.ok} == {("metrics/a.json", "coco.AP"),
                                                           ("seeds/a/seed1.json", "coco.AP")}
    rows, _ = compare_trees(str(a), str(_tree(tmp_path / "d", loss=(2.0, 1.5, 1.2))))  # 0.2 / 1.2 > 0.1
    assert [r.file for r in rows if not r.ok] == ["live/a/plots/metrics/train/loss.tsv"]
    # an explicit tolerance, and a file missing from one tree
    e = _tree(tmp_path / "e", ap=0.25)
    (e / "metrics" / "extra.json").write_text(json.dumps({"coco": {"AP": 0.1}}))
    rows, tol = compare_trees(str(a), str(e), ap_tol=0.06)
    assert tol == 0.06 and [(r.file, r.key) for r in rows if not r.ok] == [("metrics/extra.json", f"only in {e}")]
    text = summary(rows, tol, 0.1, "A", "B")
    assert text.splitlines()[0].endswith("1 disagree") and "metrics/extra.json" in text


def test_a_tree_without_a_seed_study_needs_the_tolerance(tmp_path):
    a = _tree(tmp_path / "a", seeds_csv="model,n,AP std (%)\nT,1,\n")
    from ld.errors import ConfigError

    with pytest.raises(ConfigError, match="--ap-tol"):
        compare_trees(str(a), str(a))
    assert all(r.ok for r in compare_trees(str(a), str(a), ap_tol=0.0)[0])


def test_a_tree_from_a_git_revision(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    _tree(repo / "results")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env={**env, "PATH": "/usr/bin:/bin"})
    monkeypatch.chdir(repo)
    tree = Tree("HEAD:results")
    assert tree.files(("metrics/*.json",)) == ["metrics/a.json"] and tree.has("tables/seeds.csv")
    shutil.rmtree(repo / "results" / "seeds")  # the working tree changed: HEAD still holds it
    (repo / "results" / "metrics" / "a.json").write_text(json.dumps({"coco": {"AP": 0.3, "AP50": 0.4},
                                                                     "voc": {"AP_by_iou": {"AP50": 0.5}}}))
    rows, _ = compare_trees("HEAD:results", "results")
    assert {(r.file, r.key) for r in rows if not r.ok} == {("metrics/a.json", "coco.AP"),
                                                           ("seeds/a/seed1.json", "only in HEAD:results")}


def test_the_command_exits_0_1_or_2(tmp_path):
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b", ap=0.3)

    def ld(*args):
        return subprocess.run([sys.executable, "-m", "ld.cli", "compare", *map(str, args)], cwd=REPO,
                              capture_output=True, text=True)

    same = ld(a, a)
    assert same.returncode == 0 and "all agree within tolerance" in same.stdout, same.stdout + same.stderr
    differ = ld(a, b)
    assert differ.returncode == 1 and "coco.AP: 0.2 vs 0.3" in differ.stdout, differ.stdout
    assert ld(a, b, "--ap-tol", "0.2").returncode == 0
    missing = ld(a, tmp_path / "nowhere")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and "no such folder" in missing.stderr


def test_the_command_s_defaults_are_the_module_s():
    """ld/cli.py spells the defaults out (every stage imports ld.cli; it does not import ld.results)."""
    from ld.cli import build_parser
    from ld.results.compare import CURVE_RTOL, SPREAD_FACTOR

    args = build_parser().parse_args(["compare", "a", "b"])
    assert (args.spread_factor, args.curve_rtol, args.ap_tol) == (SPREAD_FACTOR, CURVE_RTOL, None)
