"""The seed study: which runs and seeds it trains, and its mean/spread table, on hand-made metrics."""
from __future__ import annotations

import json
import math

import pytest

from ld.engine.seeds import study_runs, study_seeds
from ld.errors import ConfigError
from ld.results.tables import seed_runs, seed_runs_shown, seed_summary, write_frame, write_seed_summary

PARAMS = {
    "profile": "smoke", "seed": 0, "profiles": {"smoke": {}, "mini": {}},
    "distill": {"ld": {"teacher": "t"}, "vlr": {"teacher": "t"}, "self": {"teacher": "b"}},
    "study": {"teacher": "t", "baseline": "b", "ld": "ld", "ld_vlr": "vlr", "selfld": "self",
              "seeds": {"smoke": [2, 0, 1, 1]}},
}


def test_study_runs_name_each_method_and_its_teacher():
    runs = study_runs(PARAMS)
    assert [(r["method"], r["run"], r["teacher"]) for r in runs] == [
        ("baseline", "b", ""), ("LD", "ld", "t"), ("LD + VLR", "vlr", "t"), ("Self-LD", "self", "b")]


def test_study_runs_refuse_a_teacher_the_stage_does_not_depend_on():
    params = {**PARAMS, "distill": {**PARAMS["distill"], "vlr": {"teacher": "other"}}}
    with pytest.raises(ConfigError, match="study.ld_vlr.*distils from 'other'"):
        study_runs(params)
    with pytest.raises(ConfigError, match="not a `distill` run"):
        study_runs({**PARAMS, "study": {**PARAMS["study"], "ld": "nope"}})
    with pytest.raises(ConfigError, match="lacks"):
        study_runs({**PARAMS, "study": {"teacher": "t"}})


def test_study_seeds_put_the_main_seed_first_without_repeats():
    assert study_seeds(PARAMS, "smoke") == [0, 2, 1]
    assert study_seeds({**PARAMS, "seed": 5}, "smoke") == [5, 2, 0, 1]
    assert study_seeds(PARAMS, "mini") == [0]  # no entry: the main seed alone
    with pytest.raises(ConfigError, match="unknown profile"):
        study_seeds(PARAMS, "coco")


def _metrics(path, ap):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"coco": {"AP": ap, "AP50": ap + 0.2, "AP75": ap - 0.1}}))


def test_seed_table_mean_spread_and_difference(tmp_path):
    main, seeds = tmp_path / "metrics", tmp_path / "seeds"
    _metrics(main / "t.json", 0.50)
    for run, aps in {"b": [0.40, 0.42, 0.44], "ld": [0.45, 0.47, 0.49], "vlr": [0.46, 0.46]}.items():
        _metrics(main / f"{run}.json", aps[0])
        for seed, ap in zip((2, 1), aps[1:]):
            _metrics(seeds / run / f"seed{seed}.json", ap)
    per_seed = seed_runs(main, seeds, study_runs(PARAMS), [0, 2, 1], teacher="t")
    assert list(per_seed.method[:2]) == ["teacher", "baseline"] and len(per_seed) == 1 + 4 * 3
    # vlr lacks seed 1 and Self-LD never ran: marked, not filled in
    assert per_seed[per_seed.status == "not run"].run.tolist() == ["vlr", "self", "self", "self"]

    summary = seed_summary(per_seed).set_index("method")
    assert summary.loc["baseline", "n"] == 3 and summary.loc["baseline", "AP_mean"] == pytest.approx(0.42)
    assert summary.loc["baseline", "AP_std"] == pytest.approx(0.02)
    assert summary.loc["LD", "delta_vs_baseline"] == pytest.approx(0.05)
    assert summary.loc["LD", "delta_se"] == pytest.approx(math.sqrt(0.02 ** 2 / 3 * 2))
    assert summary.loc["LD + VLR", "n"] == 2 and summary.loc["LD + VLR", "AP_std"] == pytest.approx(0.0)
    assert summary.loc["Self-LD", "n"] == 0 and math.isnan(summary.loc["Self-LD", "AP_mean"])
    assert math.isnan(summary.loc["teacher", "delta_vs_baseline"])  # one seed, no spread, no difference

    md, csv = write_seed_summary(seed_summary(per_seed), tmp_path / "seeds_table")
    text = md.read_text()
    assert "42.0 ± 2.0" in text and "+5.0 ± 1.6" in text and "| Self-LD" in text
    assert "AP mean ± std (%)" in text and "Δ AP vs baseline ± s.e. (%)" in text
    lines = csv.read_text().splitlines()  # one number a column, in %
    assert lines[0] == ("method,run,n,AP mean (%),AP std (%),AP min (%),AP max (%),delta vs baseline (%),"
                        "delta se (%)")
    assert lines[2] == "baseline,b,3,42.0,2.0,40.0,44.0,,"
    assert lines[3] == "LD,ld,3,47.0,2.0,45.0,49.0,+5.0,1.6"

    md, csv = write_frame(seed_runs_shown(per_seed), tmp_path / "seeds_per_run")
    assert csv.read_text().splitlines()[:2] == ["method,run,seed,AP (%),AP50 (%),AP75 (%),status",
                                                "teacher,t,0,50.0,70.0,40.0,ok"]
