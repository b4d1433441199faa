"""``ld diff A B``: two revisions or experiments side by side, readably: the params that differ, then each
run's headline metrics (``results/<profile>/summary.json``, the ``table`` stage's) in percent with one
decimal, A beside B and the difference, in under 160 columns.

``dvc exp show`` lists every param, metric and dependency hash (hundreds of columns) and ``dvc metrics
diff`` keeps COCO's fractions; this is the view a person reads. A side is ``workspace`` (the files as they
are), a git revision (``HEAD``, ``main``, a commit), or a DVC experiment's name (``dvc exp run -n w0.5``:
its ref under ``refs/exps/``).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ld.errors import ConfigError, MissingFileError
from ld.layout import results_dir

WORKSPACE = "workspace"
METRICS = ("AP", "AP50", "AP75", "VOC_AP")
RUN_WIDTH = 30


def resolve(side: str) -> str | None:
    """The git revision a side names (None: the workspace); an experiment's name is its ref."""
    if side == WORKSPACE:
        return None
    if subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{side}^{{commit}}"],
                      capture_output=True).returncode == 0:
        return side
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], capture_output=True,
                          text=True).stdout.split()
    named = [ref for ref in refs if ref.rsplit("/", 1)[-1] == side]
    if len(named) == 1:
        return named[0]
    raise ConfigError(f"{side}: no git revision or DVC experiment of that name"
                      + (f" ({len(named)} experiments have it: give one's commit)" if named else
                         f" (give {WORKSPACE}, HEAD, a branch or commit, or a name `dvc exp list` shows)"))


def read_file(rev: str | None, path: str) -> str:
    """``path`` (relative to the repository root) in the workspace, or as revision ``rev`` holds it."""
    if rev is None:
        if not Path(path).is_file():
            raise MissingFileError(f"{path} not found in the workspace: run the pipeline (dvc repro) or pull it")
        return Path(path).read_text()
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    if shown.returncode:
        raise MissingFileError(f"{path} is not in {rev} ({shown.stderr.strip().splitlines()[0]})")
    return shown.stdout


def flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping's leaves by dotted key (lists are leaves)."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: obj}


def changed_params(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, value in A, value in B)`` for every dotted key of two params files that differs (a key in one
    only: None in the other), in key order."""
    fa, fb = flat(a), flat(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(fa.keys() | fb.keys()) if fa.get(k) != fb.get(k)]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _delta(a: float | None, b: float | None) -> str:
    return "" if a is None or b is None else f"{round(100 * (b - a), 1) + 0.0:+.1f}"  # + 0.0: no -0.0


def _short(value: Any, width: int = 50) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def side_by_side(a: str = "HEAD", b: str = WORKSPACE, *, every_run: bool = False) -> str:
    """The text of ``ld diff a b``: the params that differ, then a row per run whose headline metrics
    differ at one decimal (``every_run``: every run), A, B and B - A in percent for each of :data:`METRICS`."""
    import yaml

    rev_a, rev_b = resolve(a), resolve(b)
    params_a = yaml.safe_load(read_file(rev_a, "params.yaml"))
    params_b = yaml.safe_load(read_file(rev_b, "params.yaml"))
    summary_a = json.loads(read_file(rev_a, (results_dir(params_a["profile"]) / "summary.json").as_posix()))
    summary_b = json.loads(read_file(rev_b, (results_dir(params_b["profile"]) / "summary.json").as_posix()))

    lines = [f"A = {a}, B = {b}: headline metrics (results/<profile>/summary.json), in %"]
    changes = changed_params(params_a, params_b)
    lines += [f"  param {key}: {_short(va)} -> {_short(vb)}" for key, va, vb in changes[:20]]
    lines += [f"  ... and {len(changes) - 20} more params"] if len(changes) > 20 else []
    lines += [] if changes else ["  (no param differs)"]
    header = f"{'run':<{RUN_WIDTH}}" + "".join(f" | {m:>6} A {'B':>5} {'B-A':>5}" for m in METRICS)
    lines += ["", header, "-" * len(header)]
    shown = 0
    for run in sorted(summary_a.keys() | summary_b.keys()):
        ma, mb = summary_a.get(run, {}), summary_b.get(run, {})
        cells = [(_pct(ma.get(m)), _pct(mb.get(m)), _delta(ma.get(m), mb.get(m))) for m in METRICS]
        if not every_run and all(x == y for x, y, _ in cells):
            continue
        name = run if len(run) <= RUN_WIDTH else run[:RUN_WIDTH - 1] + "~"
        lines.append(f"{name:<{RUN_WIDTH}}" + "".join(f" | {x:>8} {y:>5} {d:>5}" for x, y, d in cells))
        shown += 1
    if not shown:
        lines.append("(every run's metrics agree at one decimal; --all shows them)")
    return "\n".join(lines)
