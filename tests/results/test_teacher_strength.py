"""The teacher-strength table and figure, on a hand-made seed study."""
from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy.stats import t

from ld.results.study import seed_summary
from ld.results.teacher_strength import draw_teacher_strength, teacher_strength, write_teacher_strength

RECIPES = {"Main LD": ("ld", "self", "absent"), "GI imitation alone": ("im",)}


def _rows(run, teacher, role, aps, weights):
    return [{"role": role, "model": "R-50" if role == "teacher" else "R-18", "method": "", "run": run,
             "teacher": teacher, "seed": seed, "AP": ap, "AP50": None, "AP75": None, "status": "ok",
             "initial_weights": w, "seeds_stage": seed > 0} for seed, (ap, w) in enumerate(zip(aps, weights))]


@pytest.fixture
def study():
    paired = ["w0", "w1", "w2"]
    per_seed = pd.DataFrame.from_records([
        *_rows("T", "", "teacher", [0.30], paired),
        *_rows("b", "", "baseline", [0.20, 0.21, 0.22], paired),
        *_rows("ld", "T", "student", [0.25, 0.27, 0.26], paired),  # +0.05, +0.06, +0.04 at each seed
        *_rows("self", "b", "student", [0.21, 0.21, 0.23], paired),  # Self-LD: the baseline is its teacher
        *_rows("im", "T", "student", [0.24, 0.22], ["x0", "x1"]),  # other initial weights: not paired
    ])
    return seed_summary(per_seed), per_seed


def test_each_run_against_its_baseline_with_its_teachers_main_seed_ap(study):
    summary, per_seed = study
    frame = teacher_strength(summary, per_seed, 0, RECIPES).set_index("run")
    assert list(frame.index) == ["ld", "self", "im"]  # a run the study lacks has no row
    assert frame.loc["ld", "teacher_AP"] == pytest.approx(0.30)
    assert frame.loc["self", "teacher_AP"] == pytest.approx(0.20)  # the baseline's main-seed model, not its mean
    assert frame.baseline.tolist() == ["b", "b", "b"]
    assert frame.recipe.tolist() == ["Main LD", "Main LD", "GI imitation alone"]
    ld = frame.loc["ld"]  # paired: the differences 0.05, 0.06, 0.04
    assert ld.test == "paired t" and ld.delta == pytest.approx(0.05) and ld.se == pytest.approx(0.01 / math.sqrt(3))
    half = t.ppf(0.975, 2) * 0.01 / math.sqrt(3)
    assert (ld.low, ld.high) == (pytest.approx(0.05 - half), pytest.approx(0.05 + half))
    im = frame.loc["im"]  # Welch: 0.23 ± 0.0141 (n 2) against 0.21 ± 0.01 (n 3)
    assert im.test == "Welch t" and im.n == 2 and im.delta == pytest.approx(0.02)
    assert im.se == pytest.approx(math.sqrt(0.0002 / 2 + 0.0001 / 3))


def test_the_table_in_percent_and_the_figure_a_line_per_recipe(study, tmp_path):
    from matplotlib.container import ErrorbarContainer

    summary, per_seed = study
    frame = teacher_strength(summary, per_seed, 0, RECIPES)
    md, csv = write_teacher_strength(frame, tmp_path / "teacher_strength")
    lines = csv.read_text().splitlines()
    assert lines[0] == ("recipe,run,teacher,teacher AP (%),baseline,n,delta (%),delta se (%),95% CI low (%),"
                        "95% CI high (%),test")
    assert lines[1].startswith("Main LD,ld,T,30.0,b,3,+5.0,0.6,+2.5,+7.5,paired t")
    fig = draw_teacher_strength(frame, "mini")
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [c.get_label() for c in bars] == ["Main LD", "GI imitation alone"]
    line, _, (bar,) = bars[0]
    assert list(line.get_xdata()) == pytest.approx([20.0, 30.0])  # sorted by the teacher's AP, in %
    assert list(line.get_ydata()) == pytest.approx([2 / 3, 5.0])  # in points
    by_run = frame.set_index("run")
    for segment, run in zip(bar.get_segments(), ("self", "ld")):  # each bar spans the interval, below 0 too
        assert [y for _, y in segment] == pytest.approx([100 * by_run.low[run], 100 * by_run.high[run]])
    assert by_run.low["self"] < 0
    assert sorted(a.get_text() for a in ax.texts) == ["T", "T", "b"]
    assert "profile mini" in ax.get_title()
