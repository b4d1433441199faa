"""Tables people read: AP in percent as the paper prints it (one decimal, the unit in the header), and a
table written atomically as Markdown with its CSV beside it. The metrics JSON keeps COCO's fractions
(0.40123); every table a person reads (Markdown, CSV, a notebook's table) shows 40.1 under 'AP (%)'."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ld.io import atomic_write_text

PERCENT = " (%)"  # the unit in the header of every percent column, Markdown and CSV alike: 'AP (%)'


def ap_points(value, *, fraction: bool = True, delta: bool = False) -> float:
    """One AP (or recall) in percent, one decimal, as the paper prints it: 0.40123 -> 40.1.

    ``fraction``: ``value`` is COCO's fraction (metrics JSON); False: it is in % already (the paper's
    numbers). ``delta``: a signed difference (negative values are kept). NaN for a missing value (a run
    not run) and for pycocotools' -1 (no objects of that size, e.g. APl on small images).
    """
    if value is None or pd.isna(value) or (value < 0 and not delta):
        return float("nan")
    return round(100 * value if fraction else value, 1) + 0.0  # + 0.0: -0.0 reads 0.0


def format_ap(value, *, fraction: bool = True, delta: bool = False) -> str:
    """The text of :func:`ap_points`: '40.1', a delta signed ('+0.8', '-1.7'); '' for a missing value
    (a run not run) and 'n/a' for pycocotools' -1 (no objects of that size), never '-1' or '-100.0'."""
    if value is None or pd.isna(value):
        return ""
    points = ap_points(value, fraction=fraction, delta=delta)
    return "n/a" if pd.isna(points) else f"{points:+.1f}" if delta else f"{points:.1f}"


def percent(frame: pd.DataFrame, columns, *, fraction: bool = True, delta: bool = False) -> pd.DataFrame:
    """A copy of ``frame`` with each of ``columns`` as :func:`format_ap` writes it, its header naming the
    unit: 'AP' -> 'AP (%)', 'teacher_AP' -> 'teacher AP (%)'. Every table a person reads goes through it."""
    shown = frame.copy()
    for col in columns:
        shown[col] = [format_ap(v, fraction=fraction, delta=delta) for v in frame[col]]
    return shown.rename(columns={col: col.replace("_", " ") + PERCENT for col in columns})


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a Markdown table, each cell as written (no re-parsing of '40.0' into '40'), missing
    cells empty; numbers and percent columns aligned right."""
    cells = frame.astype(object).where(frame.notna(), "")
    align = ["right" if pd.api.types.is_numeric_dtype(frame[c]) or str(c).endswith(PERCENT) else "left"
             for c in frame]
    return cells.to_markdown(index=False, disable_numparse=True, colalign=align)


def write_frame(table: pd.DataFrame, stem: str | Path, markdown: pd.DataFrame | None = None) -> tuple[Path, Path]:
    """Write a table people read, atomically: ``stem.csv`` holds ``table``, ``stem.md`` ``markdown``
    (default: the same cells). Format AP with :func:`percent` first: tables are in % with one decimal,
    the unit in the header; the metrics JSON keeps COCO's fractions."""
    stem = Path(stem)
    md = atomic_write_text(stem.with_suffix(".md"), markdown_table(table if markdown is None else markdown) + "\n")
    csv = atomic_write_text(stem.with_suffix(".csv"), table.to_csv(index=False))
    return md, csv
