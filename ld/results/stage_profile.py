"""Where ``dvc repro``'s time goes: per stage, the seconds its ``ld`` processes spent importing and working.

``ld stage-times [DVC REPRO ARGS]`` runs ``dvc repro`` with ``LD_STAGE_TIMES`` naming a file of lines; each
``ld`` process of each stage appends one (:func:`ld.cli.main`): ``stage`` (DVC's ``DVC_STAGE``), ``pid``,
``ppid``, ``command``, ``start`` and ``end`` (epoch seconds, the start taken from /proc so the interpreter's
start-up counts), ``imports`` (seconds in the outermost imports, start-up included), ``cpu`` (its own user +
system seconds) and ``exit``. This module reads them and prints a table: per stage its wall time (first start
to last end of its processes), import and work seconds (work = wall - imports, the processes of a stage
running one after another), CPU seconds and process count; per kind of stage (the name before ``@``) the
sums; and what ``dvc repro`` took in all, the rest being DVC's own time (hashing, the cache, lock files).
A notebook's kernel (the report stage's papermill) is not an ``ld`` process: its imports count as work.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ld.errors import BadFileError

FIELDS = ("stage", "start", "end", "imports")  # what a line needs (the others are shown where present)


def read_times(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a times file, each a dict; a line that is not a record is an error naming it."""
    records = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise BadFileError(f"{path}:{number}: not a JSON line ({err.msg}); it holds one line per `ld` "
                               "process, as LD_STAGE_TIMES makes them") from None
        missing = [field for field in FIELDS if field not in record] if isinstance(record, dict) else list(FIELDS)
        if missing:
            raise BadFileError(f"{path}:{number}: a record without {', '.join(missing)}")
        records.append(record)
    return records


def stage_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per stage, in the order the stages started: ``stage``, ``wall``, ``imports``, ``work``,
    ``cpu`` (seconds) and ``processes``. Processes outside a stage (no ``DVC_STAGE``) are the row ``''``."""
    stages: dict[str, list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda r: r["start"]):
        stages.setdefault(record["stage"], []).append(record)
    rows = []
    for stage, procs in stages.items():
        wall = max(p["end"] for p in procs) - min(p["start"] for p in procs)
        imports = sum(p["imports"] for p in procs)
        rows.append({"stage": stage, "wall": wall, "imports": imports, "work": max(0.0, wall - imports),
                     "cpu": sum(p.get("cpu", 0.0) for p in procs), "processes": len(procs)})
    return rows


def kind_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stage rows summed by kind (``train@gfl_r18_1x`` -> ``train``), in order of first appearance;
    ``stages`` counts them."""
    kinds: dict[str, dict[str, Any]] = {}
    for row in rows:
        kind = kinds.setdefault(row["stage"].split("@")[0],
                                {"kind": row["stage"].split("@")[0], "stages": 0, "wall": 0.0, "imports": 0.0,
                                 "work": 0.0, "cpu": 0.0, "processes": 0})
        kind["stages"] += 1
        for key in ("wall", "imports", "work", "cpu", "processes"):
            kind[key] += row[key]
    return list(kinds.values())


def format_profile(rows: list[dict[str, Any]], total_wall: float | None = None) -> str:
    """The stage table, the kind table and the totals, as text under 100 columns."""
    kinds = kind_rows(rows)
    total = {key: sum(row[key] for row in rows) for key in ("wall", "imports", "work", "cpu", "processes")}
    labelled = [(row["stage"] or "(no stage)", row) for row in rows]
    by_kind = [(f"{kind['kind'] or '(no stage)'} x{kind['stages']}", kind) for kind in kinds]
    by_kind.append((f"{len(rows)} stages", total))
    width = max(len(name) for name, _ in [("stage", None), *labelled, *by_kind])

    def table(title: str, lines: list[tuple[str, dict[str, Any]]]) -> list[str]:
        head = f"{title:{width}}  {'wall s':>8}  {'import s':>8}  {'work s':>8}  {'cpu s':>8}  {'procs':>5}"
        return [head, *(f"{name:{width}}  {row['wall']:8.1f}  {row['imports']:8.1f}  {row['work']:8.1f}  "
                         f"{row['cpu']:8.1f}  {row['processes']:5d}" for name, row in lines)]

    out = [*table("stage", labelled), "", *table("kind", by_kind)]
    if total_wall is not None:
        out.append(f"\ndvc repro took {total_wall:.1f} s in all: {total['wall']:.1f} s in its stages' `ld` "
                   f"processes ({total['imports']:.1f} s importing), {max(0.0, total_wall - total['wall']):.1f} s "
                   "DVC's own (hashing, the cache, dvc.lock, starting each stage)")
    return "\n".join(out)


def profile_repro(repro_args: list[str], *, times: str | Path | None = None,
                  fork_server: bool = True) -> tuple[int, float, Path]:
    """Run ``dvc repro REPRO_ARGS`` with every ``ld`` process timing itself into ``times`` (appended to;
    default a temporary file, which the caller removes), its ``ld`` commands run by a fork server
    (:mod:`ld.fork_server`) unless ``fork_server`` is false; returns dvc's exit code, its wall seconds and
    the file."""
    from ld.fork_server import running

    if times is None:
        handle, name = tempfile.mkstemp(prefix="ld-stage-times-", suffix=".jsonl")
        os.close(handle)
        times = name
    env = dict(os.environ, LD_STAGE_TIMES=str(Path(times).resolve()))
    start = time.perf_counter()
    with running(env) if fork_server else contextlib.nullcontext(env) as env:
        code = subprocess.run([sys.executable, "-m", "dvc", "repro", *repro_args], env=env).returncode
    return code, time.perf_counter() - start, Path(times)


def profile_document(rows: list[dict[str, Any]], total_wall: float | None, repro_args: list[str]) -> dict[str, Any]:
    """What ``--save`` writes: the command, the stage rows, the kind rows and the totals."""
    return {"command": " ".join(["dvc", "repro", *repro_args]), "total_wall": total_wall, "stages": rows,
            "kinds": kind_rows(rows)}
