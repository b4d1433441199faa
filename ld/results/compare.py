"""Two result trees compared within a stated tolerance, metric by metric (``ld compare A B``).

Where the bits of two runs cannot agree (GPUs, the profiles that are not pinned: :mod:`ld.cpu_pinning`),
two result trees of one profile (``results/<profile>``: two machines, two revisions, two experiments)
agree when:

- every number of every metrics file (``metrics/<run>.json`` and ``seeds/<run>/*.json``: COCO's AP, AR,
  VOC's AP per IoU, all fractions) differs by at most ``ap_tol``. By default ``ap_tol`` is
  ``spread_factor`` (2) times the profile's seed spread: the pooled standard deviation of AP over seeds of
  tree A's seed study (``tables/seeds.csv``, runs with two seeds or more), so two trees agree when the
  machine moved each number by no more than a change of seed moves it;
- every training-loss curve (``live/<run>/plots/metrics/train/<term>.tsv``) has the same steps, and at each
  step the values differ by at most ``curve_rtol`` of the larger one (plus 1e-6).

A file in one tree and not in the other disagrees. Tables and figures are made from these files, so they
agree when these do. A tree is a folder, or ``REV:PATH`` for a folder as git's revision REV holds it
(``HEAD:results/smoke``: the committed results).
"""
from __future__ import annotations

import csv
import fnmatch
import io
import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ld.errors import BadFileError, ConfigError, MissingFileError
from ld.results.side_by_side import flat

METRIC_FILES = ("metrics/*.json", "seeds/*/*.json")
CURVE_FILES = ("live/*/plots/metrics/train/*.tsv",)
SEEDS_TABLE = "tables/seeds.csv"
SPREAD_FACTOR = 2.0
CURVE_RTOL = 0.1
CURVE_ATOL = 1e-6


@dataclass(frozen=True)
class Row:
    """One compared quantity: ``kind`` 'metric' or 'curve', the file (relative to the tree), the key
    (dotted metric key, or the curve's worst step), both values (None: missing), the difference and the
    tolerance it is held to."""
    kind: str
    file: str
    key: str
    a: float | None
    b: float | None
    diff: float
    tol: float

    @property
    def ok(self) -> bool:
        return self.a is not None and self.b is not None and self.diff <= self.tol


class Tree:
    """The files of a result tree: a folder, or ``REV:PATH`` read from git (in the current repository)."""

    def __init__(self, spec: str):
        self.spec = spec
        folder = Path(spec)
        if folder.is_dir():
            self._names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
            self._read = lambda rel: (folder / rel).read_text()
            return
        rev, sep, path = spec.partition(":")
        if not sep or not rev:
            raise MissingFileError(f"{spec}: no such folder (a result tree is a folder, e.g. results/smoke, or "
                                   "REV:PATH, e.g. HEAD:results/smoke)")
        path = path.strip("/")
        listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "--", path],
                                capture_output=True, text=True)
        if listed.returncode or not listed.stdout.strip():
            raise MissingFileError(f"{spec}: git holds no folder {path!r} at revision {rev!r} "
                                   f"({listed.stderr.strip() or 'no files'})")
        self._names = sorted(name[len(path) + 1:] for name in listed.stdout.splitlines())
        self._read = lambda rel: subprocess.run(["git", "show", f"{rev}:{path}/{rel}"], capture_output=True,
                                                text=True, check=True).stdout

    def files(self, patterns: tuple[str, ...]) -> list[str]:
        """The tree's files matching any of ``patterns`` (``fnmatch``, relative to the tree)."""
        return [n for n in self._names if any(fnmatch.fnmatchcase(n, p) and n.count("/") == p.count("/")
                                              for p in patterns)]

    def read(self, rel: str) -> str:
        return self._read(rel)

    def has(self, rel: str) -> bool:
        return rel in self._names


def flat_numbers(obj, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a JSON object, by dotted key: ``{"coco": {"AP": 0.1}} -> {"coco.AP": 0.1}``."""
    return {key: float(value) for key, value in flat(obj, prefix).items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def read_curve(text: str) -> dict[int, float]:
    """A DVCLive ``.tsv`` curve (``step<TAB>value`` under a header) as ``{step: value}``."""
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    return {int(step): float(value) for step, value in rows[1:] if step}


def seed_spread(seeds_csv: str) -> float | None:
    """The pooled seed spread of a seed table (``tables/seeds.csv``): the root mean square of ``AP std (%)``
    over runs with ``n >= 2``, as a fraction (COCO's unit). None if no run has two seeds."""
    stds = [float(row["AP std (%)"]) for row in csv.DictReader(io.StringIO(seeds_csv))
            if row.get("n") and int(float(row["n"])) >= 2 and row.get("AP std (%)")]
    return math.sqrt(sum(s * s for s in stds) / len(stds)) / 100 if stds else None


def compare_metrics(a: dict[str, float], b: dict[str, float], file: str, tol: float) -> list[Row]:
    """One :class:`Row` per key of either metrics dict (:func:`flat_numbers`): ``|a - b| <= tol``."""
    rows = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        diff = abs(va - vb) if va is not None and vb is not None else math.inf
        rows.append(Row("metric", file, key, va, vb, diff, tol))
    return rows


def compare_curve(a: dict[int, float], b: dict[int, float], file: str, rtol: float,
                  atol: float = CURVE_ATOL) -> Row:
    """One :class:`Row` for a curve: its worst step's relative difference ``|a - b| / max(|a|, |b|)``, held
    to ``rtol`` (``atol`` absorbs values near 0). Other steps in the two curves: infinitely far."""
    if set(a) != set(b) or not a:
        only = sorted(set(a) ^ set(b))
        return Row("curve", file, f"steps differ (e.g. {only[:3]})" if only else "empty", None, None, math.inf, rtol)
    worst, step = -1.0, None
    for s in sorted(a):
        scale = max(abs(a[s]), abs(b[s]))
        rel = max(abs(a[s] - b[s]) - atol, 0.0) / scale if scale > 0 else 0.0
        if not math.isfinite(rel) or math.isnan(a[s]) != math.isnan(b[s]):
            rel = math.inf
        if rel > worst:
            worst, step = rel, s
    return Row("curve", file, f"step {step}", a[step], b[step], worst, rtol)


def compare_trees(a: str | Tree, b: str | Tree, *, spread_factor: float = SPREAD_FACTOR, ap_tol: float | None = None,
                  curve_rtol: float = CURVE_RTOL) -> tuple[list[Row], float]:
    """Every metric and curve of trees ``a`` and ``b`` compared (see the module): ``(rows, ap_tol)``.

    ``ap_tol`` (a fraction, as the metrics files) defaults to ``spread_factor`` times tree A's seed spread;
    a tree without a seed table needs it given."""
    a, b = (t if isinstance(t, Tree) else Tree(t) for t in (a, b))
    if ap_tol is None:
        spread = seed_spread(a.read(SEEDS_TABLE)) if a.has(SEEDS_TABLE) else None
        if spread is None:
            raise ConfigError(f"{a.spec} has no seed study to take the tolerance from ({SEEDS_TABLE} with a run of "
                              "two seeds or more): give the AP tolerance, e.g. --ap-tol 0.01")
        ap_tol = spread_factor * spread
    if not ap_tol >= 0 or not curve_rtol >= 0:
        raise ConfigError(f"the tolerances must be >= 0, got ap_tol={ap_tol}, curve_rtol={curve_rtol}")
    rows: list[Row] = []
    for kind, patterns, tol in (("metric", METRIC_FILES, ap_tol), ("curve", CURVE_FILES, curve_rtol)):
        for rel in sorted(set(a.files(patterns)) | set(b.files(patterns))):
            if not (a.has(rel) and b.has(rel)):
                rows.append(Row(kind, rel, f"only in {(a if a.has(rel) else b).spec}", None, None, math.inf, tol))
            elif kind == "metric":
                rows += compare_metrics(*(flat_numbers(_json(t, rel)) for t in (a, b)), rel, tol)
            else:
                rows.append(compare_curve(*(read_curve(t.read(rel)) for t in (a, b)), rel, tol))
    return rows, ap_tol


def _json(tree: Tree, rel: str):
    try:
        return json.loads(tree.read(rel))
    except json.JSONDecodeError as err:
        raise BadFileError(f"{tree.spec}/{rel} is not JSON ({err}): rerun the stage that writes it") from err


def summary(rows: list[Row], ap_tol: float, curve_rtol: float, a: str, b: str, *, shown: int = 20) -> str:
    """What ``ld compare`` prints: one verdict line with the tolerances, then the worst rows that disagree."""
    bad = sorted((r for r in rows if not r.ok), key=lambda r: -r.diff)
    metrics = sum(r.kind == "metric" for r in rows)
    curves = sum(r.kind == "curve" for r in rows)
    worst = {kind: max((r.diff for r in rows if r.kind == kind), default=0.0) for kind in ("metric", "curve")}
    head = (f"{a} vs {b}: {metrics} metrics (|diff| <= {ap_tol:.4f}; largest {worst['metric']:.4f}) and {curves} "
            f"loss curves (relative diff <= {curve_rtol:g}; largest {worst['curve']:.3g}): ")
    if not bad:
        return head + "all agree within tolerance"
    lines = [head + f"{len(bad)} disagree"]
    for r in bad[:shown]:
        fmt = lambda v: "missing" if v is None else f"{v:.6g}"  # noqa: E731
        lines.append(f"  {r.kind:6s} {r.file} {r.key}: {fmt(r.a)} vs {fmt(r.b)} (diff {r.diff:.4g} > {r.tol:.4g})")
    if len(bad) > shown:
        lines.append(f"  ... and {len(bad) - shown} more")
    return "\n".join(lines)
