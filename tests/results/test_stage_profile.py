"""`ld stage-times`: each `ld` process's line (ld/cli.py) and the per-stage table made of them."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ld.errors import BadFileError
from ld.results.stage_profile import format_profile, kind_rows, read_times, stage_rows


def _line(stage, start, end, imports, cpu=1.0, pid=1):
    return {"stage": stage, "pid": pid, "ppid": 0, "command": "ld x", "start": start, "end": end,
            "imports": imports, "cpu": cpu, "exit": 0}


def test_a_stage_is_the_span_of_its_processes_and_the_sum_of_their_imports():
    records = [_line("train@b", 110.0, 120.0, 4.0, cpu=15.0),
               _line("train@a", 100.0, 109.0, 3.5, cpu=12.0),
               # a stage of three processes one after another (the parent, then two children inside it)
               _line("seeds@a", 130.0, 160.0, 0.5, cpu=1.0, pid=7),
               _line("seeds@a", 131.0, 145.0, 4.0, cpu=20.0, pid=8),
               _line("seeds@a", 146.0, 159.0, 4.5, cpu=18.0, pid=9)]
    rows = stage_rows(records)
    assert [r["stage"] for r in rows] == ["train@a", "train@b", "seeds@a"]  # the order they started in
    assert rows[2] == {"stage": "seeds@a", "wall": 30.0, "imports": 9.0, "work": 21.0, "cpu": 39.0, "processes": 3}
    assert rows[0]["work"] == pytest.approx(5.5)
    kinds = kind_rows(rows)
    assert [(k["kind"], k["stages"], k["processes"]) for k in kinds] == [("train", 2, 2), ("seeds", 1, 3)]
    assert kinds[0]["wall"] == pytest.approx(19.0) and kinds[0]["imports"] == pytest.approx(7.5)

    text = format_profile(rows, total_wall=70.0)
    lines = text.splitlines()
    assert lines[0].split() == ["stage", "wall", "s", "import", "s", "work", "s", "cpu", "s", "procs"]
    assert lines[3].split() == ["seeds@a", "30.0", "9.0", "21.0", "39.0", "3"]
    assert "train x2" in text and lines[-3].split()[:3] == ["3", "stages", "49.0"]
    assert "dvc repro took 70.0 s in all: 49.0 s in its stages' `ld` processes (16.5 s importing), 21.0 s" in text
    assert max(map(len, lines)) < 160


def test_a_times_file_that_is_not_one_is_named_with_its_line(tmp_path):
    times = tmp_path / "times.jsonl"
    times.write_text(json.dumps(_line("a", 0, 1, 0.5)) + "\n\nnot json\n")
    with pytest.raises(BadFileError, match=r"times.jsonl:3: not a JSON line"):
        read_times(times)
    times.write_text(json.dumps({"stage": "a", "start": 0}) + "\n")
    with pytest.raises(BadFileError, match=r"times.jsonl:1: a record without end, imports"):
        read_times(times)


def test_each_ld_process_appends_its_line_with_the_stage_dvc_names(tmp_path):
    """An `ld` process under LD_STAGE_TIMES (as `ld stage-times` runs dvc repro): its stage from DVC_STAGE,
    its start-up and imports counted apart from its work, its exit code; a failed command too."""
    times = tmp_path / "times.jsonl"
    env = {**os.environ, "LD_STAGE_TIMES": str(times), "DVC_STAGE": "table"}
    ok = subprocess.run([sys.executable, "-m", "ld.cli", "compare", "--help"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "ld.cli", "stage-times", "--from", str(tmp_path / "none")], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no such file" in bad.stderr
    heavy = subprocess.run([sys.executable, "-c", "import torch, ld.cli, sys; sys.exit(ld.cli.main(['diff', '-h']))"],
                           env=env, capture_output=True, text=True)
    assert heavy.returncode == 0, heavy.stderr
    first, second, third = read_times(times)
    assert (first["stage"], first["command"], first["exit"]) == ("table", "ld compare --help", 0)
    assert second["exit"] == 2 and second["command"].startswith("ld stage-times --from")
    assert 0 < first["imports"] <= first["end"] - first["start"] < 60 and first["cpu"] > 0
    # a caller's main(argv): no start-up of its own, torch imported before it is not counted
    assert third["imports"] < 0.5 and third["pid"] != first["pid"]
