"""The seed study: which runs and seeds it trains, and its mean/spread table, on hand-made metrics."""
from __future__ import annotations

import json
import math

import pytest

from ld.engine.seed_study import run_seed_study
from ld.errors import BadFileError, ConfigError, LDError
from ld.frames import write_frame
from ld.layout import VOTING_NMS, seed_metrics, seeds_by_run, study_runs, study_seeds
from ld.results.study import draw_seed_study, seed_runs, seed_runs_shown, seed_summary, write_seed_summary
from ld.results.tables import ROLE_COLORS

PARAMS = {
    "profile": "smoke", "seed": 0, "profiles": {"smoke": {}, "mini": {}},
    "distill": {"ld": {"teacher": "t"}, "vlr": {"teacher": "t"}, "self": {"teacher": "b"}, "v2ld": {"teacher": "t2"}},
    "study": {"baselines": ["b", "b2"],
              "students": {"ld": {"teacher": "t"}, "vlr": {"teacher": "t"}, "self": {"teacher": "b"},
                           "v2ld": {"teacher": "t2"}},
              "seeds": {"smoke": [2, 0, 1, 1]}},
}
# the rows study_rows makes of PARAMS, labelled by hand (study_rows reads the labels from the row configs)
ROWS = [{"role": "teacher", "run": "t", "teacher": "", "section": "", "model": "R-50", "method": ""},
        {"role": "teacher", "run": "t2", "teacher": "", "section": "", "model": "V2 R-50", "method": ""},
        {"role": "baseline", "run": "b", "teacher": "", "section": "baselines", "model": "R-18", "method": ""},
        {"role": "baseline", "run": "b2", "teacher": "", "section": "baselines", "model": "V2 R-18", "method": ""},
        {"role": "student", "run": "ld", "teacher": "t", "section": "students", "model": "R-18", "method": "Main LD"},
        {"role": "student", "run": "vlr", "teacher": "t", "section": "students", "model": "R-18",
         "method": "Main LD + VLR LD"},
        {"role": "student", "run": "self", "teacher": "b", "section": "students", "model": "R-18",
         "method": "Self-LD (Main LD)"},
        {"role": "student", "run": "v2ld", "teacher": "t2", "section": "students", "model": "V2 R-18",
         "method": "Main LD"}]


def test_study_runs_list_the_baselines_then_the_students_with_their_teachers():
    assert [(r["run"], r["teacher"]) for r in study_runs(PARAMS)] == [
        ("b", ""), ("b2", ""), ("ld", "t"), ("vlr", "t"), ("self", "b"), ("v2ld", "t2")]


def test_study_runs_refuse_a_teacher_the_stage_does_not_depend_on():
    params = {**PARAMS, "distill": {**PARAMS["distill"], "vlr": {"teacher": "other"}}}
    with pytest.raises(ConfigError, match="study.students.vlr.teacher is 't', but distill gives 'other'"):
        study_runs(params)
    with pytest.raises(ConfigError, match="study.students.nope is not a `distill` run"):
        study_runs({**PARAMS, "study": {**PARAMS["study"], "students": {"nope": {"teacher": "t"}}}})
    with pytest.raises(ConfigError, match="lists no run"):
        study_runs({**PARAMS, "study": {"seeds": {}}})


def test_study_seeds_put_the_main_seed_first_without_repeats():
    assert study_seeds(PARAMS, "smoke") == [0, 2, 1]
    assert study_seeds({**PARAMS, "seed": 5}, "smoke") == [5, 2, 0, 1]
    assert study_seeds(PARAMS, "mini") == [0]  # no entry: the main seed alone
    with pytest.raises(ConfigError, match="unknown profile"):
        study_seeds(PARAMS, "coco")


@pytest.fixture
def steps(monkeypatch):
    """The study's steps recorded instead of run: ('train', config, seed, teacher, work_root, out) and
    ('eval', config, checkpoint, out, nms); ``fail`` names a step kind to raise as a failed run would."""
    import ld.engine.evaluate
    import ld.engine.train
    from ld.engine.nonfinite import NonFiniteLossError

    calls, fail = [], set()

    def build(config, params, *, profile, teacher_dir=None, work_root="work", **_):
        return {"config": config, "seed": params["seed"], "profile": profile, "teacher": teacher_dir,
                "work_root": work_root}

    def train(cfg, out, **_):
        calls.append(("train", cfg["config"], cfg["seed"], cfg["teacher"], cfg["work_root"], str(out)))
        if "train" in fail:
            raise NonFiniteLossError("loss_bbox is nan at iteration 3")

    def evaluate(config, checkpoint, out, nms=None, **_):
        calls.append(("eval", str(config), str(checkpoint), str(out), nms))

    monkeypatch.setattr(ld.engine.train, "build_train_config", build)
    monkeypatch.setattr(ld.engine.train, "train", train)
    monkeypatch.setattr(ld.engine.evaluate, "evaluate_checkpoint", evaluate)
    return calls, fail


def test_one_study_run_trains_each_extra_seed_and_evaluates_it_with_both_nms(steps, tmp_path):
    calls, _ = steps
    written = run_seed_study(PARAMS, "smoke", "self", out=tmp_path / "m", models=tmp_path / "models")
    assert written == [seed_metrics(tmp_path / "m", 2), tmp_path / "m" / f"seed2.{VOTING_NMS}.json",
                       tmp_path / "m" / "seed1.json", tmp_path / "m" / f"seed1.{VOTING_NMS}.json"]
    model = tmp_path / "models" / "seed2"
    assert calls[:3] == [
        ("train", "pipelines/configs/self.py", 2, "models/smoke/b", "work", str(model)),  # Self-LD's teacher
        ("eval", str(model / "config.py"), str(model / "model.pth"), str(tmp_path / "m" / "seed2.json"), None),
        ("eval", str(model / "config.py"), str(model / "model.pth"), str(written[1]), VOTING_NMS)]
    assert len(calls) == 6 and calls[3][2] == 1
    calls.clear()
    run_seed_study(PARAMS, "smoke", "b", out=tmp_path / "m", models=tmp_path / "models")
    assert [c[3] for c in calls if c[0] == "train"] == [None, None]  # a baseline has no teacher
    calls.clear()
    assert run_seed_study(PARAMS, "mini", "ld", out=tmp_path / "none", models=tmp_path / "none_m") == []
    assert not calls and (tmp_path / "none").is_dir() and (tmp_path / "none_m").is_dir()  # the stage's outs exist
    with pytest.raises(ConfigError, match="'t' is not a run of the study"):
        run_seed_study(PARAMS, "smoke", "t", out=tmp_path, models=tmp_path)


def test_a_profile_trains_the_other_seeds_of_the_runs_it_names_only(steps, tmp_path):
    """``study.seeded``: smoke's other seeds train the runs it lists; the others keep the main seed alone
    (their stage makes its folders and trains nothing); a profile without an entry seeds every run."""
    calls, _ = steps
    params = {**PARAMS, "study": {**PARAMS["study"], "seeded": {"smoke": ["b", "vlr"]}}}
    assert study_seeds(params, "smoke", "vlr") == [0, 2, 1] and study_seeds(params, "smoke", "ld") == [0]
    assert study_seeds(params, "smoke") == [0, 2, 1]  # the profile's seeds, for the tables' titles
    assert seeds_by_run(params, "smoke") == {"t": [0], "t2": [0], "b": [0, 2, 1], "b2": [0], "ld": [0],
                                             "vlr": [0, 2, 1], "self": [0], "v2ld": [0]}
    assert run_seed_study(params, "smoke", "ld", out=tmp_path / "ld", models=tmp_path / "ld_m") == []
    assert not calls and (tmp_path / "ld_m").is_dir()
    assert json.loads((tmp_path / "ld" / "seeds.json").read_text()) == {"run": "ld", "profile": "smoke", "seeds": []}
    assert len(run_seed_study(params, "smoke", "vlr", out=tmp_path / "v", models=tmp_path / "v_m")) == 4
    params["study"]["seeded"] = {"mini": ["b"]}  # no entry for smoke: every run
    assert study_seeds(params, "smoke", "ld") == [0, 2, 1]


def test_more_seeds_train_the_runs_of_undecided_claims_beyond_the_profiles_seeds(steps, tmp_path):
    """``study.more_seeds``: the runs it names get its seeds after the profile's (their seeds stage trains
    them too); the other runs, and a profile without an entry, keep the profile's seeds."""
    calls, _ = steps
    params = {**PARAMS, "study": {**PARAMS["study"], "seeded": {"smoke": ["b", "ld", "vlr"]},
                                  "more_seeds": {"smoke": {"seeds": [7, 3], "runs": ["b", "ld"]}}}}
    assert study_seeds(params, "smoke", "ld") == [0, 2, 1, 7, 3]
    assert study_seeds(params, "smoke", "vlr") == [0, 2, 1] and study_seeds(params, "smoke") == [0, 2, 1]
    assert study_seeds(params, "smoke", "self") == [0]  # not seeded at smoke
    assert study_seeds(params, "mini", "ld") == [0]
    assert seeds_by_run(params, "smoke")["b"] == [0, 2, 1, 7, 3]
    run_seed_study(params, "smoke", "ld", out=tmp_path / "m", models=tmp_path / "models")
    assert [c[2] for c in calls if c[0] == "train"] == [2, 1, 7, 3]
    assert json.loads((tmp_path / "m" / "seeds.json").read_text())["seeds"] == [2, 1, 7, 3]


def test_some_seeds_alone_spread_a_study_and_seeds_json_lists_what_the_folder_holds(steps, tmp_path):
    """``ld seeds RUN --seeds K ...``: those of the run's seeds alone, in the study's order; ``seeds.json``
    keeps the seeds it listed before and adds each one as it is done (a seed whose evaluation fails is not
    listed); a seed the profile does not train for the run, or a malformed ``seeds.json``, is refused."""
    calls, fail = steps
    params = {**PARAMS, "study": {**PARAMS["study"], "more_seeds": {"smoke": {"seeds": [7, 3], "runs": ["ld"]}}}}

    def listed():
        return json.loads((tmp_path / "m" / "seeds.json").read_text())["seeds"]

    written = run_seed_study(params, "smoke", "ld", out=tmp_path / "m", models=tmp_path / "mo", only=[3, 2])
    assert [c[2] for c in calls if c[0] == "train"] == [2, 3] and len(written) == 4
    assert listed() == [2, 3]
    calls.clear()
    run_seed_study(params, "smoke", "ld", out=tmp_path / "m", models=tmp_path / "mo", only=[7])
    assert [c[2] for c in calls if c[0] == "train"] == [7] and listed() == [2, 7, 3]  # the study's order
    fail.add("train")
    with pytest.raises(LDError, match="training ld with seed 1 failed"):
        run_seed_study(params, "smoke", "ld", out=tmp_path / "m", models=tmp_path / "mo", only=[1])
    assert listed() == [2, 7, 3]
    with pytest.raises(ConfigError, match=r"--seeds 0 5: not a seed that profile smoke trains for 'ld' .*"
                                          r"study.more_seeds: \[2, 1, 7, 3\]"):
        run_seed_study(params, "smoke", "ld", out=tmp_path / "m", models=tmp_path / "mo", only=[5, 0, 2])
    (tmp_path / "m" / "seeds.json").write_text('{"seeds": "2"}')
    with pytest.raises(BadFileError, match="seeds.json: not a seed study's seeds.json"):
        run_seed_study(params, "smoke", "ld", out=tmp_path / "m", models=tmp_path / "mo", only=[2])
    fail.clear()
    run_seed_study(params, "smoke", "ld", out=tmp_path / "m", models=tmp_path / "mo")  # every seed, afresh
    assert listed() == [2, 1, 7, 3]


def test_ld_seeds_takes_some_seeds_and_refuses_another_in_one_line(steps, tmp_path, monkeypatch, capsys):
    import ld.profiles
    from ld.cli import main

    monkeypatch.setattr(ld.profiles, "load_params", lambda path: PARAMS)  # the hand-made study, unvalidated
    folders = ["--out", str(tmp_path / "m"), "--models", str(tmp_path / "mo")]
    assert main(["seeds", "self", "--seeds", "1", *folders]) == 0
    assert [c[2] for c in steps[0] if c[0] == "train"] == [1]
    assert main(["seeds", "self", "--seeds", "4", "1", *folders]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "ld seeds: error: --seeds 4: not a seed that profile smoke trains for 'self' (params.yaml study.seeds / "
        "study.seeded / study.more_seeds: [2, 1])")


IMITATION = {**PARAMS, "study": {**PARAMS["study"], "imitation": {"im": {"teacher": "t"}}}}


def test_a_run_of_the_study_only_trains_every_seed_the_main_one_too(steps, tmp_path):
    """``study.imitation``: runs no main-pipeline stage trains; their seeds stage trains the main seed too,
    and nothing at a profile that does not seed them (their tables have no row there)."""
    calls, _ = steps
    assert study_runs(IMITATION)[-1] == {"run": "im", "teacher": "t", "section": "imitation"}
    assert [s["section"] for s in study_runs(IMITATION)[:3]] == ["baselines", "baselines", "students"]
    written = run_seed_study(IMITATION, "smoke", "im", out=tmp_path / "m", models=tmp_path / "models")
    assert [c[2] for c in calls if c[0] == "train"] == [0, 2, 1]  # the main seed first
    assert {c[3] for c in calls if c[0] == "train"} == {"models/smoke/t"}
    assert written[:2] == [seed_metrics(tmp_path / "m", 0), seed_metrics(tmp_path / "m", 0, VOTING_NMS)]
    assert json.loads((tmp_path / "m" / "seeds.json").read_text())["seeds"] == [0, 2, 1]
    calls.clear()
    params = {**IMITATION, "study": {**IMITATION["study"], "seeded": {"smoke": ["b"]}}}
    assert study_seeds(params, "smoke", "im") == [] and seeds_by_run(params, "smoke")["im"] == []
    assert study_seeds(params, "smoke", "ld") == [0]  # a student of the pipeline keeps its main seed
    assert run_seed_study(params, "smoke", "im", out=tmp_path / "n", models=tmp_path / "n_m") == [] and not calls


def test_a_run_of_the_study_only_reads_every_seed_from_its_seeds_stage(tmp_path):
    rows = [*ROWS[:1], {"role": "student", "run": "im", "teacher": "t", "section": "imitation", "model": "R-18",
                        "method": "GI imitation"}]
    _metrics(tmp_path / "metrics" / "t.json", 0.5)
    _metrics(tmp_path / "metrics" / "im.json", 0.9)  # not read: no main-pipeline stage writes it
    for seed, ap in ((0, 0.41), (1, 0.43)):
        _metrics(seed_metrics(tmp_path / "seeds" / "im", seed), ap)
        _metrics(seed_metrics(tmp_path / "seeds" / "im", seed, VOTING_NMS), ap + 0.01)
    plain = seed_runs(tmp_path / "metrics", tmp_path / "seeds", rows, [0, 1])
    assert plain.set_index(["run", "seed"]).AP.to_dict() == {("t", 0): 0.5, ("im", 0): 0.41, ("im", 1): 0.43}
    assert plain.seeds_stage.tolist() == [False, True, True]  # the models evaluated with both NMS
    voting = seed_runs(tmp_path / "metrics", tmp_path / "seeds", rows, [0, 1], nms=VOTING_NMS)
    assert voting.set_index(["run", "seed"]).AP.to_dict() == {("im", 0): 0.42, ("im", 1): 0.44}
    (tmp_path / "seeds" / "im" / "seed1.json").write_text("{")
    with pytest.raises(BadFileError, match=r"`dvc repro seeds_imitation@im`"):
        seed_runs(tmp_path / "metrics", tmp_path / "seeds", rows, [0, 1])


def test_a_failed_step_of_the_study_is_one_error_naming_it(steps, tmp_path):
    """A training that stops (e.g. a non-finite loss, exit 2 with its own message) ends the study with one
    line naming the run and seed and the cause, not a traceback."""
    _, fail = steps
    fail.add("train")
    with pytest.raises(LDError, match=r"training self with seed 2 failed: loss_bbox is nan.*again to resume"):
        run_seed_study(PARAMS, "smoke", "self", out=tmp_path / "m", models=tmp_path / "models")


def _metrics(path, ap):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"coco": {"AP": ap, "AP50": ap + 0.2, "AP75": ap - 0.1}}))


@pytest.fixture
def study_files(tmp_path):
    main, extra = tmp_path / "metrics", tmp_path / "seeds"
    _metrics(main / "t.json", 0.50)
    for run, aps in {"b": [0.40, 0.42, 0.44], "ld": [0.45, 0.47, 0.49], "vlr": [0.46, 0.46],
                     "b2": [0.30, 0.31, 0.32], "v2ld": [0.33, 0.33, 0.36]}.items():
        _metrics(main / f"{run}.json", aps[0])
        for seed, ap in zip((2, 1), aps[1:]):
            _metrics(seed_metrics(extra / run, seed), ap)
            _metrics(seed_metrics(extra / run, seed, VOTING_NMS), ap + 0.002)
    return main, extra


def test_seed_table_mean_spread_and_difference_to_the_baseline_of_the_same_model(study_files, tmp_path):
    main, extra = study_files
    per_seed = seed_runs(main, extra, ROWS, [0, 2, 1])
    assert list(per_seed.run[:3]) == ["t", "t2", "b"] and len(per_seed) == 2 + 6 * 3  # a teacher: one seed
    # vlr lacks seed 1, Self-LD never ran, the GFocalV2 teacher's metrics are missing: marked, not filled in
    assert per_seed[per_seed.status == "not run"].run.tolist() == ["t2", "vlr", "self", "self", "self"]

    summary = seed_summary(per_seed).set_index("run")
    assert summary.loc["b", "n"] == 3 and summary.loc["b", "AP_mean"] == pytest.approx(0.42)
    assert summary.loc["b", "AP_std"] == pytest.approx(0.02)
    assert summary.loc["ld", "baseline"] == "b" and summary.loc["ld", "delta_vs_baseline"] == pytest.approx(0.05)
    assert summary.loc["ld", "delta_se"] == pytest.approx(math.sqrt(0.02 ** 2 / 3 * 2))
    assert summary.loc["v2ld", "baseline"] == "b2"  # its own model's baseline, not the first one
    assert summary.loc["v2ld", "delta_vs_baseline"] == pytest.approx(0.34 - 0.31)
    assert summary.loc["vlr", "n"] == 2 and summary.loc["vlr", "AP_std"] == pytest.approx(0.0)
    assert summary.loc["self", "n"] == 0 and math.isnan(summary.loc["self", "AP_mean"])
    assert summary.loc["t", "baseline"] == "" and math.isnan(summary.loc["t", "delta_vs_baseline"])

    md, csv = write_seed_summary(seed_summary(per_seed), tmp_path / "seeds_table")
    text = md.read_text()
    assert "42.0 ± 2.0" in text and "+5.0 ± 1.6" in text and "| Self-LD (Main LD)" in text
    assert "AP mean ± std (%)" in text and "Δ AP vs baseline ± s.e. (%)" in text
    lines = csv.read_text().splitlines()  # one number a column, in %
    assert lines[0] == ("model,method,run,teacher,n,AP mean (%),AP std (%),AP min (%),AP max (%),baseline,"
                        "delta vs baseline (%),delta se (%)")
    assert lines[3] == "R-18,,b,,3,42.0,2.0,40.0,44.0,,,"
    assert lines[5] == "R-18,Main LD,ld,t,3,47.0,2.0,45.0,49.0,b,+5.0,1.6"

    md, csv = write_frame(seed_runs_shown(per_seed), tmp_path / "seeds_per_run")
    assert csv.read_text().splitlines()[:2] == [
        "model,method,run,teacher,seed,AP (%),AP50 (%),AP75 (%),status,initial weights",
        "R-50,,t,,0,50.0,70.0,40.0,ok,"]  # no digest in these hand-made metrics


def test_the_voting_nms_rows_are_the_extra_seeds_models(study_files):
    main, extra = study_files
    voting = seed_runs(main, extra, ROWS, [0, 2, 1], nms=VOTING_NMS)
    assert set(voting.seed) == {2, 1} and "t" not in set(voting.run)  # no main seed, teachers have none
    assert voting.set_index(["run", "seed"]).AP[("ld", 2)] == pytest.approx(0.472)


def test_the_figure_colours_each_run_by_its_role_teachers_alone_grey(study_files):
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_rgb

    main, extra = study_files
    many = ROWS + [{**ROWS[-1], "run": f"s{i}"} for i in range(12)]  # 20 runs: a student at every colour cycle slot
    for i in range(12):
        _metrics(main / f"s{i}.json", 0.3)
        _metrics(seed_metrics(extra / f"s{i}", 2), 0.31)
    per_seed = seed_runs(main, extra, many, [0, 2, 1])
    summary = seed_summary(per_seed)
    fig = draw_seed_study(per_seed, summary, "smoke")
    ax = fig.axes[0]
    done = per_seed[per_seed.status == "ok"]
    dots = [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())]
    assert len(dots) == summary.n.gt(0).sum() and sum(len(c.get_offsets()) for c in dots) == len(done)
    ran = summary[summary.n > 0]
    for collection, role in zip(dots, ran.role):
        assert to_rgb(collection.get_facecolor()[0][:3]) == to_rgb(ROLE_COLORS[role]), role
    grey = {i for i, c in enumerate(dots) if to_rgb(c.get_facecolor()[0][:3]) == to_rgb(ROLE_COLORS["teacher"])}
    assert grey == {i for i, role in enumerate(ran.role) if role == "teacher"}
    legend = [t.get_text() for t in ax.get_legend().texts]
    assert legend == ["teacher (trained once: one seed)", "baseline (no teacher)", "distilled student",
                      "mean over the seeds"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(summary.run)
