"""End to end: `dvc repro` of the smoke profile in a fresh copy of the repository, as a user runs it."""
import contextlib
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ld.cpu_pinning import cpu_name
from ld.results.claims import CLAIMS
from tests.conftest import REPO

# pytest-timeout: a full `dvc repro` of the smoke profile in the module fixture (minutes; `ld stage-times`)
# charged to the first test, then `dvc exp run`s
pytestmark = [pytest.mark.slow, pytest.mark.timeout(7200)]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
RUNS = (*PARAMS["train"], *PARAMS["distill"])


def _run(args, cwd, env):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def _clone(dst):
    """A copy of the repository's files (tracked and untracked-not-ignored) as a fresh git repo."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "config", "user.name", "ld-test"],
                ["git", "config", "user.email", "ld-test@localhost"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "clone"]):
        _run(cmd, dst, env)
    return dst, env


@pytest.fixture
def fork_server():
    """``fork_server(root, env) -> env``: a fork server (ld/fork_server.py) in the clone ``root`` for the rest of
    the test, as `ld stage-times` (`make run`) runs every `ld` of a `dvc repro` in a child of one; the
    environment to run the commands with. Start it once ``root``'s params.yaml is written: it takes that
    profile's deterministic mode (an `ld` of another mode runs in its own process)."""
    from ld.fork_server import running

    with contextlib.ExitStack() as stack:
        yield lambda root, env: stack.enter_context(running(env, cwd=root))


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    return _clone(tmp_path_factory.mktemp("clone"))


@pytest.fixture(scope="module")
def repro(clone):
    """`dvc repro` as `ld stage-times` runs it: each `ld` process appends its times to LD_STAGE_TIMES, and runs
    in a child of its fork server (ld/fork_server.py), so the byte-for-byte checks below check that path."""
    from ld.fork_server import running

    root, env = clone
    with running({**env, "LD_STAGE_TIMES": str(root.parent / "stage_times.jsonl")}, cwd=root) as served:
        return _run(["dvc", "repro"], root, served)


def test_smoke_repro_writes_metrics_for_every_run(clone, repro):
    root, _ = clone
    for run in RUNS:
        metrics = json.loads((root / "results" / "smoke" / "metrics" / f"{run}.json").read_text())
        assert set(metrics["coco"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"}
        assert set(metrics["voc"]) >= {"AP", "AP50", "AP75", "mAP50_voc07_11pt", "mAP50_area"}
        for name, value in [*metrics["coco"].items(), *metrics["voc"]["AP_by_iou_voc07_11pt"].items()]:
            assert value == -1.0 or 0.0 <= value <= 1.0, (run, name, value)
        assert "| mAP " in (root / "results" / "smoke" / "eval" / run / "voc_per_class.md").read_text()
        assert (root / "models" / "smoke" / run / "model.pth").is_file()
        assert (root / "results" / "smoke" / "live" / run / "plots" / "metrics").is_dir()
    table = (root / "results" / "smoke" / "tables" / "runs.md").read_text()
    assert all(f"| {run} " in table for run in RUNS) and "not run" not in table
    assert (root / "results" / "smoke" / "figures" / "runs_ap.png").stat().st_size > 1000



def test_the_other_detectors_train_at_smoke_with_each_loss_logged(clone, repro):
    """ATSS, FCOS and RetinaNet (general-distribution boxes), LD from the GFocal teacher into each and full LD
    + GI imitation: every logged point of every loss term in the run's DVCLive folder (2 epochs of 12 iterations,
    logged every 5 and at each epoch's end: 6 points), all finite."""
    from tests.models.test_ld_dense_heads import OWN_LOSSES, STUDENTS, _detector

    root, _ = clone
    for run in ("atss_r18_1x", "fcos_r18_1x", "retina_r18_1x", *STUDENTS):
        curves = root / "results" / "smoke" / "live" / run / "plots" / "metrics" / "train"
        for term in OWN_LOSSES[_detector(run)] | STUDENTS.get(run, set()) | {"loss"}:
            points = [float(line.split("\t")[1]) for line in (curves / f"{term}.tsv").read_text().splitlines()[1:]]
            assert len(points) == 6 and all(math.isfinite(v) for v in points), (run, term, points)


def test_the_headline_metrics_and_plots_are_what_dvc_shows(clone, repro):
    root, env = clone
    summary = json.loads((root / "results" / "smoke" / "summary.json").read_text())
    assert set(summary) == set(RUNS) and all(set(v) == {"AP", "AP50", "AP75", "VOC_AP"} for v in summary.values())
    shown = json.loads(_run(["dvc", "plots", "show", "--json"], root, env))
    assert not shown.get("errors"), shown["errors"]
    plots = shown["data"]
    charts = {name for name, renders in plots.items() if renders[0]["type"] == "vega"}
    images = {name for name, renders in plots.items() if renders[0]["type"] == "image"}
    from ld.results.summary import TERMS

    assert len(charts) == len(TERMS) + 1 and "COCO AP of every run (%)" in charts, charts
    assert all(name.endswith(".png") for name in images) and len(images) >= 8, images
    values = plots["Training loss, total (every run)"][0]["content"]["data"]["values"]
    assert {row["run"] for row in values} == set(RUNS) and min(float(row["loss"]) for row in values) > 0

def test_smoke_repro_writes_the_seed_study_and_every_paper_table(clone, repro):
    root = clone[0] / "results" / "smoke"
    seeds, seeded = PARAMS["study"]["seeds"]["smoke"], PARAMS["study"]["seeded"]["smoke"]
    study = [*PARAMS["study"]["baselines"], *PARAMS["study"]["students"]]
    assert len(seeded) >= 2 and set(seeded) <= set(study) and set(seeded) & set(PARAMS["study"]["students"])
    summary = pd.read_csv(root / "tables" / "seeds.csv")
    assert list(summary.columns[:6]) == ["model", "method", "run", "teacher", "n", "AP mean (%)"]
    # the runs smoke seeds (a baseline and a student) with every seed, the others with the main one
    assert summary.set_index("run").n[study].tolist() == [len(seeds) if r in seeded else 1 for r in study]
    assert set(summary.run) - set(study) == {"gfl_r50_2x", "gflv2_r50_2x", "ld_r34_gfl_r50_1x"}  # the teachers, once
    assert "not run" not in (root / "tables" / "seeds_per_run.csv").read_text()
    for run in study:
        extras = {f"seed{extra}{nms}.json" for extra in seeds[1:] for nms in ("", ".voting_cluster_diounms")}
        assert {p.name for p in (root / "seeds" / run).iterdir()} == {"seeds.json", *(extras if run in seeded else ())}
    imitation = PARAMS["study"]["imitation"]  # runs of the study only: smoke does not seed them, so no rows
    assert imitation and not set(imitation) & set(seeded) and not set(imitation) & set(summary.run)
    for run in imitation:
        assert [p.name for p in (root / "seeds" / run).iterdir()] == ["seeds.json"]
    # paired by construction: at each seed the seeded student started from its baseline's initial weights, as
    # every student of the R-18 GFocal baseline did at the main seed (their metrics carry the digests)
    def digest(path):
        return json.loads(path.read_text())["initial_weights"]

    baseline, student = seeded[:2] if seeded[0] in PARAMS["study"]["baselines"] else seeded[1::-1]
    for extra in seeds[1:]:
        assert digest(root / "seeds" / baseline / f"seed{extra}.json") == digest(
            root / "seeds" / student / f"seed{extra}.json")
    assert len({digest(root / "metrics" / f"{run}.json") for run in ("gfl_r18_1x", "ld_r18_gfl_r50_1x",
                                                                      "ld_vlr_r18_gfl_r50_1x", "selfld_r18_1x")}) == 1
    assert digest(root / "metrics" / "gfl_r18_1x.json") != digest(root / "metrics" / "atss_r18_1x.json")
    claims = pd.read_csv(root / "tables" / "claims.csv", keep_default_na=False)
    assert len(claims) == len(CLAIMS)
    thesis = claims.control.isin(list(imitation))  # the thesis rows: their runs are not in smoke's study
    assert (claims.status[thesis] == claims.control[thesis].map(
        lambda run: f"not in this profile's seed study: {run} (params.yaml study, study.seeded)")).all()
    assert thesis.sum() == 5 and not claims.status[~thesis].str.startswith("not").any(), claims.status
    assert set(claims.verdict[~thesis]) <= {"holds", "does not hold", "inconclusive"}
    assert set(claims.verdict[thesis]) == {""}
    strength = pd.read_csv(root / "tables" / "teacher_strength.csv")
    assert strength.run.tolist() == ["ld_r18_gfl_r50_1x", "ld_r18_ld_r34_1x", "selfld_r18_1x"]  # Main LD: smoke ran it
    for table in PARAMS["paper_tables"]:
        text = (root / "tables" / f"paper_{table}.md").read_text()
        assert "paper AP (%)" in text and ("| ok " in text or "not run in this profile" in text), table
        assert (root / "figures" / f"paper_{table}.png").stat().st_size > 1000
    assert "| ok " in (root / "tables" / "paper_selfld_coco.md").read_text()  # smoke runs R-18 and Self-LD R-18


def test_smoke_repro_writes_the_html_reports_with_their_figures(clone, repro):
    reports = clone[0] / "results" / "smoke" / "reports"
    index = (reports / "index.html").read_text()
    assert "failed" not in index and "not written" not in index
    assert index.index("<table") < index.index("data:image/png;base64,")  # the headline, then the seed study
    pages = ["runs_table", "claims", "ambiguity", "compare_runs", "seeds_table",
             *(f"paper_{t}" for t in PARAMS["paper_tables"])]
    for name in pages:
        assert f'href="{name}.html"' in index
        assert "data:image/png;base64," in (reports / f"{name}.html").read_text(), name
    figures = clone[0] / "results" / "smoke" / "figures"
    assert (figures / "ambiguity" / "kl_to_teacher.png").is_file()
    assert (figures / "compare" / "training_loss.png").is_file()


def test_distilled_checkpoint_holds_the_student_only(clone, repro):
    import torch

    import ld.models  # noqa: F401  (registers the modules)

    root, _ = clone
    student = torch.load(root / "models/smoke/ld_r18_gfl_r50_1x/model.pth")["state_dict"]
    baseline = torch.load(root / "models/smoke/gfl_r18_1x/model.pth")["state_dict"]
    assert not any(k.startswith("teacher") for k in student)
    assert set(student) == set(baseline)


def test_every_stage_that_ran_has_its_times(clone, repro):
    """`ld stage-times`'s records on the real pipeline: one per stage that ran (its one `ld` process, the seed
    study's included), named as DVC names it, its imports a part of its wall time."""
    from ld.results.stage_profile import format_profile, read_times, stage_rows

    ran = [line.split("'")[1] for line in repro.splitlines() if line.startswith("Running stage")]
    rows = stage_rows(read_times(clone[0].parent / "stage_times.jsonl"))
    assert [row["stage"] for row in rows] == ran and all(row["processes"] == 1 for row in rows)
    assert all(0 < row["imports"] < row["wall"] for row in rows if row["stage"].startswith(("train@", "distill@")))
    # the trainings ran in children of one fork server (each `ld` of its own would be its stage shell's child)
    records = read_times(clone[0].parent / "stage_times.jsonl")
    assert len({r["ppid"] for r in records if r["stage"].startswith(("train@", "distill@"))}) == 1
    print(format_profile(rows))


def test_second_repro_runs_nothing(clone, repro):
    root, env = clone
    out = _run(["dvc", "repro"], root, env)
    assert "Running stage" not in out, out


# The committed smoke results were made in the deterministic mode (ld/cpu_pinning.py: AVX2 kernels, 2 threads, a
# float32 teacher) on this CPU; the smoke baseline's exported weights are these bytes on any x86-64 CPU with AVX2
# (the README publishes the hash). Update both when you regenerate the committed results.
COMMITTED_ON = "AuthenticAMD AMD EPYC (family 25, model 17)"
BASELINE_SHA256 = "1cf090bdaa788829ce440678415b802205fa7b732876a5f345e4f894ac14652c"


def test_the_published_baseline_hash_is_the_readme_s():
    assert BASELINE_SHA256 in (REPO / "README.md").read_text() and COMMITTED_ON in (REPO / "README.md").read_text()


def test_repro_in_a_clean_clone_reproduces_the_committed_results(clone, repro):
    """Same seed, deterministic mode: the metrics, tables and model hashes in git come out again, bit for bit,
    on any x86-64 CPU with AVX2. Should a CPU other than the committer's still give other bits, the trees are
    compared within the stated tolerance instead (`ld compare`), naming both CPUs; on the committer's own CPU
    nothing but the same bytes passes."""
    root, env = clone
    changed = _run(["git", "status", "--porcelain"], root, env)
    model = hashlib.sha256((root / "models/smoke/gfl_r18_1x/model.pth").read_bytes()).hexdigest()
    if changed == "":
        assert model == BASELINE_SHA256, f"the committed results came out again, but the baseline's hash {model} is " \
                                         "not the published one: update BASELINE_SHA256 and the README"
        return
    files = changed.splitlines()
    compare = subprocess.run(["ld", "compare", "HEAD:results/smoke", "results/smoke"], cwd=root, env=env,
                             capture_output=True, text=True)
    where = (f"{len(files)} files differ from the committed ones (e.g. {', '.join(f[3:] for f in files[:5])}); the "
             f"smoke baseline's model.pth is {model} (published: {BASELINE_SHA256}). The committed results were made "
             f"on {COMMITTED_ON}; this CPU is {cpu_name()}. Within the tolerance? {compare.stdout}{compare.stderr}")
    assert cpu_name() != COMMITTED_ON, "on the committer's CPU the bytes must agree: " + where
    assert compare.returncode == 0, "another CPU, and beyond the tolerance: " + where
    warnings.warn("not bit for bit on this CPU, but within the tolerance: " + where, stacklevel=1)


def test_a_fresh_clone_pulls_what_was_pushed_and_analyses_without_training(clone, repro, tmp_path, fork_server):
    """The DVC remote round trip: push from the clone that built everything, pull into a fresh git clone,
    run the analysis notebook there; before the pull, a missing model names its stage, exit 2. (Before the
    experiments below, which leave their results in the clone's workspace.)"""
    root, env = clone
    remote = tmp_path / "storage"  # the default remote (.dvc/config) pointed elsewhere, as a user does
    _run(["dvc", "remote", "modify", "--local", "storage", "url", str(remote)], root, env)
    _run(["dvc", "push"], root, env)
    if _run(["git", "status", "--porcelain"], root, env):  # another CPU's bits (see above): what another clone gets
        _run(["git", "commit", "-qam", "the results of this machine"], root, env)
    fresh = tmp_path / "fresh"
    _run(["git", "clone", "-q", str(root), str(fresh)], tmp_path, env)
    env = fork_server(fresh, env)
    analysis = ["ld", "notebook", "notebooks/ambiguity.ipynb", str(tmp_path / "ambiguity.ipynb"),
                "-p", "figures_dir", str(tmp_path / "figures"), "-p", "num_images", "8"]
    teacher = PARAMS["analysis"]["teacher"]

    def missing_model_error() -> str:
        missing = subprocess.run(analysis, cwd=fresh, env=env, capture_output=True, text=True)
        assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stderr
        return missing.stderr.rstrip("\n").split("\n")[-1].split("\r")[-1]

    # the default remote, beside the fresh clone, is empty: pulling cannot help, making it or another remote can
    error = missing_model_error()
    assert "does not hold the version dvc.lock names" in error and f"`dvc repro train@{teacher}`" in error, error
    assert "dvc pull" not in error, error
    _run(["dvc", "remote", "modify", "--local", "storage", "url", str(remote)], fresh, env)
    error = missing_model_error()  # the remote that holds it: pull it
    assert f"`dvc pull models/smoke/{teacher}`" in error and f"`dvc repro train@{teacher}`" in error, error
    _run(["dvc", "pull"], fresh, env)
    assert "up to date" in _run(["dvc", "status", "dvc.yaml"], fresh, env)  # the pipeline (not the benchmark's)
    _run(analysis, fresh, env)
    assert (tmp_path / "figures" / "kl_to_teacher.png").stat().st_size > 1000
    assert _run(["git", "status", "--porcelain"], fresh, env) == ""  # it wrote only where it was told
    # what a change would rerun, the README's way (`dvc exp run --dry` runs in a temporary copy without the
    # outputs and fails in DVC 3.67, pulled or not): the value in params.yaml, `dvc repro --dry`
    params = (fresh / "params.yaml").read_text()
    (fresh / "params.yaml").write_text(params.replace("  loss_weight: 0.25", "  loss_weight: 0.5", 1))
    out = _run(["dvc", "repro", "--dry", "--force-downstream"], fresh, env)
    (fresh / "params.yaml").write_text(params)
    assert "Running stage 'distill@ld_r18_gfl_r50_1x'" in out and "Running stage 'train@" not in out, out
    assert _run(["git", "status", "--porcelain"], fresh, env) == ""


def test_changed_ld_param_reruns_only_what_depends_on_it(clone, repro, fork_server):
    root, env = clone
    env = fork_server(root, env)
    # what it reruns: the stages it changes and everything downstream of them (`--force-downstream`), named
    # by a dry run; then one of them run as an experiment, whose params and metrics `dvc exp show` lists
    params = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(params.replace("  loss_weight: 0.25", "  loss_weight: 0.5", 1))
    try:
        out = _run(["dvc", "repro", "--dry", "--force-downstream"], root, env)
    finally:
        (root / "params.yaml").write_text(params)
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    distilled = PARAMS["distill"]  # every distillation run depends on `ld`; no trained run does
    expected = ({f"{stage}@{run}" for run in distilled for stage in ("distill", "eval_distill")}
                | {f"seeds_distill@{run}" for run in PARAMS["study"]["students"]}
                | {f"seeds_imitation@{run}" for run in PARAMS["study"]["imitation"]}  # their configs' LD terms
                | {"table", "report", "seeds_table", "claims", "ambiguity"}
                | {f"paper_table@{t}" for t in PARAMS["paper_tables"]})
    assert ran == expected, out
    # one student and the headline table (-s: these stages alone, not the other students), as an experiment
    stages = ["distill@ld_r18_gfl_r50_1x", "eval_distill@ld_r18_gfl_r50_1x", "table"]
    out = _run(["dvc", "exp", "run", "-n", "weight-1.0", "-S", "ld.loss_weight=1.0", "-s", *stages], root, env)
    assert {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")} == set(stages)
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], root, env))
    main = next(entry for entry in shown if entry["name"] == "main")
    exps = {rev["name"]: rev for e in main["experiments"] for rev in e["revs"]}
    summary = "results/smoke/summary.json"  # the headline, the only metrics file
    aps = set()
    for entry, weight in ((main, 0.25), (exps["weight-1.0"], 1.0)):
        assert entry["data"]["params"]["params.yaml"]["data"]["ld"]["loss_weight"] == weight
        assert set(entry["data"]["metrics"]) == {summary}
        aps.add(entry["data"]["metrics"][summary]["data"]["ld_r18_gfl_r50_1x"]["AP"])
    assert len(aps) == 2 and all(0.0 <= ap <= 1.0 for ap in aps)  # the weight changes the student
    # main and the experiment side by side fit a 160-column terminal (the README's command: deps' hashes
    # dropped); `ld diff` reads the experiment by its name: the param, then the student's row alone
    table = _run(["dvc", "exp", "show", "--only-changed", "--drop", ".*/", "--no-pager"], root,
                 {**env, "COLUMNS": "160"})
    assert max(map(len, table.splitlines())) <= 160 and "…" not in table, table
    assert "main" in table and "weight-1.0" in table and "ld_r18_gfl_r50_1x.AP" in table, table
    diff = _run(["ld", "diff", "main", "weight-1.0"], root, env)
    assert "param ld.loss_weight: 0.25 -> 1.0" in diff, diff
    assert [line.split()[0] for line in diff.splitlines() if line.startswith(RUNS)] == ["ld_r18_gfl_r50_1x"], diff
