"""The claims table on hand-made numbers: the verdict rule, each kind of claim, unfinished rows."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from ld.ops.imitation import IMITATION_METHODS
from ld.results.claims import (
    CLAIMS,
    FAILS,
    HOLDS,
    OPEN,
    Claim,
    Difference,
    claims_table,
    paired,
    paired_difference,
    seeds_to_decide,
    t_critical,
    verdict,
    welch,
    write_claims,
)
from ld.results.teacher_strength import RECIPES

ANALYSIS = {"teacher": "t", "baseline": "b", "student": "ld"}
AP = Claim("LD helps", "+0.7", "README", run="ld", control="b")


def _summary(**runs) -> pd.DataFrame:
    """seed_summary's columns from per-run AP lists (fractions)."""
    rows = []
    for run, aps in runs.items():
        s = pd.Series(aps, dtype=float)
        rows.append({"run": run, "n": len(s), "AP_mean": s.mean() if len(s) else None,
                     "AP_std": s.std(ddof=1) if len(s) > 1 else None})
    return pd.DataFrame.from_records(rows)


def _seed_rows(values: dict[tuple[str, int], tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame.from_records([
        {"role": "student", "run": run, "seed": seed, "AP": ap, "AP50": ap50, "AP75": ap75, "status": "ok"}
        for (run, seed), (ap, ap50, ap75) in values.items()])


NO_MODELS = pd.DataFrame(columns=["role", "run", "seed", "AP", "AP50", "AP75", "status"])


def _table(summary, claims, n_seeds=3, voting=NO_MODELS, plain=NO_MODELS, bench="missing.json", kl=None):
    return claims_table(summary, n_seeds, voting, plain, bench, kl, ANALYSIS, claims=tuple(claims)).iloc[0]


def test_t_critical_values_are_the_tables():
    """Two-sided 95%: Student's t tables (df 2: 4.303, 4: 2.776, 10: 2.228) and the normal's 1.960."""
    assert [round(t_critical(df), 3) for df in (2, 4, 10, math.inf)] == [4.303, 2.776, 2.228, 1.960]


@pytest.mark.parametrize("delta,se,df,sign,expected", [
    (0.010, 0.004, 10, 1, HOLDS), (-0.010, 0.004, 10, 1, FAILS), (0.008, 0.004, 10, 1, OPEN),
    (0.010, 0.004, 2, 1, OPEN),  # 2.5 standard errors: beyond 2, inside t(2) = 4.3: no longer "holds"
    (0.010, 0.004, math.inf, 1, HOLDS), (0.010, None, None, 1, OPEN), (float("nan"), 0.004, 4, 1, ""),
    (-0.010, 0.004, 10, -1, HOLDS), (0.010, 0.004, 10, -1, FAILS)])
def test_the_verdict_rule_is_the_95_percent_interval(delta, se, df, sign, expected):
    assert verdict(Difference(delta, se, df), sign=sign) == expected
    assert verdict(None) == ""


def test_welch_satterthwaite_degrees_of_freedom():
    """Equal spreads and sizes: df = 2 (n - 1); one spread 0: df = the other group's n - 1; the audit's
    '+ Main KD' (22.3 ± 0.3 vs 21.2 ± 0.7, n = 3, 3): t = 2.5 on 2.7 df, inside the 95% interval."""
    d = welch(0.21, 0.01, 3, 0.20, 0.01, 3)
    assert d.se == pytest.approx(math.sqrt(2 * 0.01 ** 2 / 3)) and d.df == pytest.approx(4.0)
    assert welch(0.21, 0.0, 3, 0.20, 0.01, 5).df == pytest.approx(4.0)
    assert welch(0.21, 0.0, 3, 0.20, 0.0, 3).df == math.inf
    kd = welch(0.223, 0.003, 3, 0.212, 0.007, 3)
    assert kd.delta / kd.se == pytest.approx(2.50, abs=0.01) and 2.5 < kd.df < 3.0 and verdict(kd) == OPEN
    assert welch(0.21, None, 1, 0.20, 0.01, 3).se is None


def test_a_paired_difference_is_the_t_of_the_per_seed_differences_with_their_correlation():
    a, b = pd.Series([0.212, 0.205, 0.220], index=[0, 1, 2]), pd.Series([0.206, 0.200, 0.213], index=[0, 1, 2])
    d = paired_difference(a, b)
    diffs = [0.006, 0.005, 0.007]
    assert d.paired and d.df == 2 and d.delta == pytest.approx(0.006)
    assert d.se == pytest.approx(pd.Series(diffs).std(ddof=1) / math.sqrt(3))
    assert d.r == pytest.approx(a.corr(b)) and d.r > 0.99
    # the seed-to-seed spread (0.7 AP) cancels: paired it holds, as independent groups it does not
    assert verdict(d) == HOLDS
    assert verdict(welch(a.mean(), a.std(), 3, b.mean(), b.std(), 3)) == OPEN
    assert paired_difference(a.iloc[:1], b.iloc[:1]).se is None


def test_an_ap_claim_gives_both_means_the_difference_and_its_standard_error():
    row = _table(_summary(ld=[0.212, 0.214, 0.210], b=[0.200, 0.202, 0.198]), [AP])
    se = math.sqrt(0.002 ** 2 / 3 * 2)  # both stds are 0.2 points
    assert row.difference == f"+1.2 ± {100 * se:.1f}"  # 1.2 > 2 x 0.16
    assert row.verdict == HOLDS and row.status == "finished"
    assert row.ours == "21.2 ± 0.2 vs 20.0 ± 0.2 (n = 3, 3)" and (row.run, row.control) == ("ld", "b")
    assert (row.paper, row.source) == ("+0.7", "README")


def test_an_ap_claim_inside_the_noise_is_inconclusive_and_a_reversed_one_does_not_hold():
    assert _table(_summary(ld=[0.21, 0.19, 0.20], b=[0.20, 0.21, 0.19]), [AP]).verdict == OPEN
    assert _table(_summary(ld=[0.180, 0.182, 0.181], b=[0.200, 0.202, 0.198]), [AP]).verdict == FAILS


def _per_seed(digests: dict[str, str], **runs) -> pd.DataFrame:
    """seed_runs rows from per-run AP lists (seeds 0, 1, ...), each run's models started from ``digests[run]``
    plus the seed."""
    return pd.DataFrame.from_records([
        {"run": run, "seed": seed, "AP": ap, "status": "ok", "initial_weights": f"{digests[run]}{seed}"}
        for run, aps in runs.items() for seed, ap in enumerate(aps)])


def test_ap_rows_are_paired_where_both_runs_started_from_the_same_weights_at_each_seed():
    aps = {"ld": [0.212, 0.205, 0.220], "b": [0.206, 0.200, 0.213]}
    paired_rows = _per_seed({"ld": "w", "b": "w"}, **aps)
    row = claims_table(_summary(**aps), 3, NO_MODELS, NO_MODELS, "x.json", None, ANALYSIS, claims=(AP,),
                       per_seed=paired_rows).iloc[0]
    assert row.verdict == HOLDS and row.test == "paired t, df 2, r = +1.00" and row.difference == "+0.6 ± 0.1"
    for unpaired in (_per_seed({"ld": "w", "b": "v"}, **aps), paired_rows.assign(initial_weights=None), None):
        row = claims_table(_summary(**aps), 3, NO_MODELS, NO_MODELS, "x.json", None, ANALYSIS, claims=(AP,),
                           per_seed=unpaired).iloc[0]
        assert row.verdict == OPEN and row.test.startswith("Welch t, df 3.9"), row.test


def test_a_row_with_missing_seeds_says_whether_it_is_decided_undecidable_or_not_finished():
    row = _table(_summary(ld=[0.212, 0.214], b=[0.200, 0.202, 0.198]), [AP])
    assert row.status == "decided at 2 of up to 3 seeds" and row.verdict == HOLDS  # seeds stop once decided
    row = _table(_summary(ld=[0.21], b=[0.20, 0.21]), [AP])
    assert row.verdict == OPEN and row.status == "not finished: 1 of 3 seeds"  # one seed: no spread to project
    # Welch +0.6 ± 0.4 at 3 seeds each: the seeds that would decide it (the test below), planned or not
    open_row = _summary(ld=[0.205, 0.199, 0.213], b=[0.200, 0.202, 0.198])
    ld = pd.Series([0.205, 0.199, 0.213])
    needed = seeds_to_decide(Difference(ld.mean() - 0.200, 1, 1, spread=math.hypot(ld.std(), 0.002)))
    assert needed > 3
    assert _table(open_row, [AP], n_seeds=needed).status == (f"not finished: 3 of {needed} seeds; at this "
                                                             f"spread about {needed} seeds would decide it")
    assert _table(open_row, [AP], n_seeds=needed - 1).status == (
        f"undecidable within {needed - 1} seeds (3 run): at this spread about {needed} seeds would decide it")
    no_effect = _summary(ld=[0.21, 0.19, 0.20], b=[0.20, 0.21, 0.19])
    assert _table(no_effect, [AP], n_seeds=8).status == (
        "undecidable within 8 seeds (3 run): at this spread not even 100 seeds would decide it")
    assert _table(_summary(ld=[], b=[0.20]), [AP]).status == "not run yet"
    row = _table(_summary(b=[0.20]), [AP])
    assert row.status.startswith("not in this profile's seed study: ld") and row.verdict == ""


def test_the_seeds_that_would_decide_a_claim_at_its_measured_difference_and_spread():
    """The smallest n with t(n-1) * spread / sqrt(n) < |delta|: a difference as large as one seed's spread
    needs 7 seeds (t(5) = 2.571 > sqrt(6) = 2.449; t(6) = 2.447 < sqrt(7) = 2.646); four times the spread, 3
    (t(2) * 0.25 = 1.08 < 1.73, and n = 2 is t(1) * 0.25 = 3.2 > 1.41); a tenth of it, more than 100."""
    assert seeds_to_decide(Difference(0.01, 0.004, 4, spread=0.01)) == 7
    assert seeds_to_decide(Difference(-0.01, 0.004, 4, spread=0.01)) == 7  # either sign
    assert seeds_to_decide(Difference(0.04, 0.004, 4, spread=0.01)) == 3
    assert seeds_to_decide(Difference(0.001, 0.004, 4, spread=0.01)) is None
    assert seeds_to_decide(Difference(0.01, 0.004, 4)) is None  # no spread: no projection
    d = paired_difference(pd.Series([0.21, 0.20, 0.22]), pd.Series([0.20, 0.21, 0.20]))
    assert d.spread == pytest.approx(pd.Series([0.01, -0.01, 0.02]).std(ddof=1))
    assert welch(0.21, 0.003, 3, 0.20, 0.004, 4).spread == pytest.approx(0.005)


def test_an_inconclusive_row_says_how_many_seeds_would_decide_it():
    row = _table(_summary(ld=[0.205, 0.199, 0.213], b=[0.200, 0.202, 0.198]), [AP])  # Welch: +0.6 ± 0.4
    ld = pd.Series([0.205, 0.199, 0.213])
    needed = seeds_to_decide(Difference(ld.mean() - 0.200, 1, 1, spread=math.hypot(ld.std(), 0.002)))
    assert row.verdict == OPEN and needed is not None and needed > 3
    assert row.status == f"finished; at this spread about {needed} seeds would decide it"
    row = _table(_summary(ld=[0.21, 0.19, 0.20], b=[0.20, 0.21, 0.19]), [AP])  # no difference at all
    assert row.status == "finished; at this spread not even 100 seeds would decide it"
    assert _table(_summary(ld=[0.212, 0.214, 0.210], b=[0.200, 0.202, 0.198]), [AP]).status == "finished"


def test_the_nms_claim_pairs_the_two_evaluations_of_each_model():
    plain = _seed_rows({("ld", 1): (0.200, 0.40, 0.18), ("ld", 2): (0.210, 0.41, 0.19), ("b", 1): (0.190, 0.39, 0.17),
                        ("b", 2): (0.195, 0.39, 0.17)})
    voting = _seed_rows({("ld", 1): (0.202, 0.399, 0.184), ("ld", 2): (0.213, 0.409, 0.195),
                         ("b", 1): (0.191, 0.389, 0.173)})  # b seed 2 not evaluated yet
    diff, n = paired(voting, plain, "AP")
    assert n == 3 and diff.delta == pytest.approx(0.002) and diff.se == pytest.approx(0.001 / math.sqrt(3))
    assert diff.paired and diff.df == 2
    row = _table(_summary(), [c for c in CLAIMS if c.kind == "nms"], voting=voting, plain=plain)
    assert row.difference == "+0.2 ± 0.1" and row.verdict == OPEN  # 3.5 standard errors, t(2) = 4.3
    assert row["95% CI"] == "[-0.0, +0.4]" and row.test.startswith("paired t, df 2")
    assert row.status == "not finished: 3 of 4 models" and "AP50 -0.1" in row.ours and "AP75 +0.4" in row.ours
    voting = voting.assign(AP=voting.AP + 0.001)  # +0.3 on every model: decided
    row = _table(_summary(), [c for c in CLAIMS if c.kind == "nms"], voting=voting, plain=plain)
    assert row.verdict == HOLDS and row.status == "decided at 3 of up to 4 models"
    lossy = voting.assign(AP50=voting.AP50 - 0.006)  # 0.7 AP50 lost on every model: more than the claimed 0.4
    assert _table(_summary(), [c for c in CLAIMS if c.kind == "nms"], voting=lossy, plain=plain).verdict == FAILS


def test_the_fps_claim_reads_the_benchmark(tmp_path):
    fps = [c for c in CLAIMS if c.kind == "fps"]
    bench = tmp_path / "bench_smoke.json"
    timing = {"model_fps": 0, "device": "cpu", "batch_size": 1}
    bench.write_text(json.dumps({"fps": {"b": {**timing, "model_fps": 80.0}, "ld": {**timing, "model_fps": 76.0}}}))
    row = _table(_summary(), fps, bench=bench)
    assert row.difference == "x0.950" and row.verdict == HOLDS and "76.0 vs 80.0 images/s" in row.ours
    assert (row.run, row.control) == ("ld", "b")  # the analysis's student and baseline
    bench.write_text(json.dumps({"fps": {"b": {**timing, "model_fps": 80.0}, "ld": {**timing, "model_fps": 70.0}}}))
    assert _table(_summary(), fps, bench=bench).verdict == FAILS
    assert _table(_summary(), fps, bench=tmp_path / "none.json").status.startswith("not measured")


def test_the_kl_claim_needs_every_edge_closer_to_the_teacher():
    kl_claim = [c for c in CLAIMS if c.kind == "kl"]
    edges = ["left", "top", "right", "bottom"]
    kl = pd.DataFrame([{"model": m, "edge": e, "mean": v, "std": 0.05, "count": 400}
                       for m, v in (("ld", 0.10), ("b", 0.13)) for e in edges])
    row = _table(_summary(), kl_claim, kl=kl)
    assert row.verdict == HOLDS and row.difference.startswith("left -0.030 ± 0.004")
    kl.loc[(kl.model == "ld") & (kl.edge == "top"), "mean"] = 0.128  # one edge within the noise
    assert _table(_summary(), kl_claim, kl=kl).verdict == OPEN
    kl.loc[(kl.model == "ld") & (kl.edge == "top"), "mean"] = 0.15  # one edge farther from the teacher
    assert _table(_summary(), kl_claim, kl=kl).verdict == FAILS
    assert _table(_summary(), kl_claim).status.startswith("not run yet")


def test_the_claims_file_states_the_rule_and_the_csv_keeps_the_sources(tmp_path):
    table = claims_table(_summary(ld=[0.21, 0.22, 0.23], b=[0.20, 0.2, 0.2]), 3, NO_MODELS, NO_MODELS, "x.json", None,
                         ANALYSIS, claims=(AP,))
    md, csv = write_claims(table, tmp_path / "claims", "mini", [0, 1, 2])
    text = md.read_text()
    assert text.startswith("# The paper's claims on the `mini` profile (seeds 0, 1, 2)\n")
    more = write_claims(table, tmp_path / "more", "mini", [0, 1, 2], [3, 4, 5])[0].read_text()
    assert more.startswith("# The paper's claims on the `mini` profile (seeds 0, 1, 2; up to 5 for the runs of "
                           "claims they leave undecided)\n")
    assert "95% confidence intervals" in text and "| LD helps" in text and "README" not in text
    assert "95% CI" in text and "Welch t, df" in text and "Notes:" not in text
    assert pd.read_csv(csv).source.tolist() == ["README"]
    noted = dataclasses.replace(AP, note="the teacher is far ahead")
    table = claims_table(_summary(ld=[0.21, 0.22, 0.23], b=[0.20, 0.2, 0.2]), 3, NO_MODELS, NO_MODELS, "x.json", None,
                         ANALYSIS, claims=(noted,))
    md, csv = write_claims(table, tmp_path / "noted", "mini", [0, 1, 2])
    assert md.read_text().endswith("Notes:\n\n- LD helps: the teacher is far ahead\n")
    assert pd.read_csv(csv).note.tolist() == ["the teacher is far ahead"]


def test_the_gi_row_and_every_thesis_row_say_what_drives_feature_imitation():
    rows = [c for c in CLAIMS if c.run == "ld_full_gi_r18_gfl_r50_1x" or c.control.startswith("im_")]
    assert len(rows) == 1 + len(IMITATION_METHODS)
    for row in rows:
        assert all(word in row.note for word in ("equally wide", "from scratch", "teacher-student gap")), row


def test_every_claim_compares_runs_of_the_study():
    import yaml

    from tests.conftest import REPO

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    study = {*params["study"]["baselines"], *params["study"]["students"], *params["study"]["imitation"]}
    for claim in CLAIMS:
        assert claim.paper and claim.source, claim
        if claim.kind == "ap":
            assert {claim.run, claim.control} <= study, claim
    assert {run for runs in RECIPES.values() for run in runs} <= study  # the teacher-strength figure's runs
    methods = {c.control.split("_r18_")[0].removeprefix("im_") for c in CLAIMS if c.control.startswith("im_")}
    assert methods == set(IMITATION_METHODS)  # a thesis row for every imitation method


def test_the_committed_mini_claims_table_is_what_its_notebook_makes_of_the_committed_results(tmp_path, monkeypatch):
    """`dvc exp run -S profile=mini -s claims` regenerates results/mini/tables/claims.* from the committed
    results alone (no model): here the notebook runs on a copy of exactly those files."""
    import shutil

    from ld.results.notebooks import execute_notebook
    from tests.conftest import REPO

    for path in ("params.yaml", "notebooks/claims.ipynb", "pipelines/configs", "results/mini/seeds",
                 "results/mini/metrics", "results/mini/tables/kl_to_teacher.csv",
                 "results/bench/bench_mini.json"):
        src, dst = REPO / path, tmp_path / path
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        elif src.is_file():
            shutil.copy(src, dst)
    monkeypatch.chdir(tmp_path)
    execute_notebook(Path("notebooks/claims.ipynb"), Path("out.ipynb"), {"profile": "mini"}, progress=False)
    for name in ("claims.md", "claims.csv", "teacher_strength.md", "teacher_strength.csv"):
        made, committed = (root / "results/mini/tables" / name for root in (tmp_path, REPO))
        assert made.read_text() == committed.read_text(), name
