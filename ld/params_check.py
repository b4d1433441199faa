"""``params.yaml`` checked as a whole, against a schema, before any stage runs.

:func:`validate_params` walks the whole file once and raises one :class:`~ld.errors.ConfigError` that
lists every problem it found, each with its key path (``profiles.smoke.batch_size``), what is wrong and
what is expected; a misspelt key gets the closest known key (``unknown key 'batch_sise' (did you mean
'batch_size'?)``). The rules are the ones the code applies when it reads each key (noted beside each
rule), checked up front instead of half-way through a pipeline, plus the cross-references between
``train``, ``teachers``, ``distill``, ``analysis`` and ``study`` that the DVC stages rely on.

The schema is plain data: a :class:`Rule` checks one value and returns it (normalised: an integral
float such as ``8.0`` in an int field becomes ``8``) with the problems it found; :func:`record`,
:func:`mapping_of` and :func:`list_of` build rules of rules.
"""
from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from ld.errors import ConfigError
from ld.layout import ANALYSIS_ROLES, LAYOUTS, PAPER_TABLES, TEACHER_PRECISIONS

SEED_MAX = 2**32 - 1  # a run's seed seeds numpy (mmengine's set_random_seed), which takes 0 .. 2**32 - 1

Problems = list[str]
Check = Callable[[Any, str], tuple[Any, Problems]]



@dataclass(frozen=True)
class Rule:
    """What a value must be (``expected``, as a message says it) and the check that says whether it is:
    ``check(value, path) -> (normalised value, problems)``."""

    expected: str
    check: Check

    def __call__(self, value: Any, path: str) -> tuple[Any, Problems]:
        return self.check(value, path)


@dataclass(frozen=True)
class Key:
    """A key of a :func:`record`: its rule and whether it must be there."""

    rule: Rule
    required: bool = False


def required(rule: Rule) -> Key:
    return Key(rule, True)


def optional(rule: Rule) -> Key:
    return Key(rule, False)


# ---------------------------------------------------------------------------------------------------------------
# messages
# ---------------------------------------------------------------------------------------------------------------


def join(path: str, key: Any) -> str:
    """The key path of ``key`` under ``path``: ``profiles.smoke`` + ``data`` -> ``profiles.smoke.data``."""
    return f"{path}.{key}" if path else str(key)


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def bad(path: str, expected: str, value: Any) -> str:
    return f"{path} must be {expected}, got {show(value)}"


def closest(name: Any, known: Iterable[str]) -> str | None:
    """The known name nearest to a misspelt ``name``, or None if none is near."""
    matches = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown(path: str, name: Any, known: Iterable[str], what: str = "key") -> str:
    """``<path>: unknown key 'x' (did you mean 'y'?)``, or the known names where none is near."""
    known = list(known)
    match = closest(name, known)
    hint = f"did you mean {match!r}?" if match else f"known: {', '.join(map(str, known)) or 'none'}"
    return f"{path}: unknown {what} {name!r} ({hint})"


def format_problems(path: str | Path, problems: Problems) -> str:
    """One message: the problem itself, or a numbered list of them."""
    if len(problems) == 1:
        return f"{path}: {problems[0]}"
    items = "\n".join(f"  {i}. {p}" for i, p in enumerate(problems, 1))
    return f"{path}: {len(problems)} problems:\n{items}"


# ---------------------------------------------------------------------------------------------------------------
# rules of single values
# ---------------------------------------------------------------------------------------------------------------


def _bounds(lo: float | None, hi: float | None, *, above: bool = False, below: bool = False) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if above else '['}{lo}, {hi}{')' if below else ']'}"
    if lo is not None:
        return f" > {lo}" if above else f" >= {lo}"
    return "" if hi is None else (f" < {hi}" if below else f" <= {hi}")


def integer(lo: int | None = None, hi: int | None = None) -> Rule:
    """An int in [lo, hi]. A bool, a string or a float with a fraction is refused; an integral float
    (``8.0``, what ``-S key=8.0`` gives) is the int it equals."""
    expected = "an integer" + _bounds(lo, hi)

    def check(value: Any, path: str) -> tuple[Any, Problems]:
        if isinstance(value, bool) or not isinstance(value, Real):
            return value, [bad(path, expected, value)]
        if not isinstance(value, Integral):
            if not (math.isfinite(value) and float(value).is_integer()):
                return value, [bad(path, expected, value)]
        value = int(value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return value, [bad(path, expected, value)]
        return value, []

    return Rule(expected, check)


def number(lo: float | None = None, hi: float | None = None, *, above: bool = False, below: bool = False) -> Rule:
    """A finite int or float in [lo, hi] (``above``: ``> lo``; ``below``: ``< hi``); a bool or string is refused."""
    bounds = _bounds(lo, hi, above=above, below=below).strip()
    expected = f"{bounds} (a number)" if bounds else "a number"  # "ld.temperature must be > 0 (a number)"

    def check(value: Any, path: str) -> tuple[Any, Problems]:
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            return value, [bad(path, expected, value)]
        low_ok = lo is None or (value > lo if above else value >= lo)
        high_ok = hi is None or (value < hi if below else value <= hi)
        return value, [] if low_ok and high_ok else [bad(path, expected, value)]

    return Rule(expected, check)


def boolean() -> Rule:
    expected = "true or false"
    return Rule(expected, lambda value, path: (value, [] if isinstance(value, bool) else [bad(path, expected, value)]))


def string(expected: str = "a non-empty string", *, valid: Callable[[str], bool] = bool, hint: str = "") -> Rule:
    """A non-empty string (``valid`` says more); ``hint`` follows the message of a value that is not one."""

    def check(value: Any, path: str) -> tuple[Any, Problems]:
        if isinstance(value, str) and valid(value):
            return value, []
        return value, [bad(path, expected, value) + (hint if not isinstance(value, str) else "")]

    return Rule(expected, check)


def choice(options: Iterable[str]) -> Rule:
    """One of ``options``; a near miss gets the closest option."""
    options = tuple(options)
    expected = f"one of {options}"

    def check(value: Any, path: str) -> tuple[Any, Problems]:
        if isinstance(value, str) and value in options:
            return value, []
        match = closest(value, options) if isinstance(value, str) else None
        return value, [bad(path, expected, value) + (f" (did you mean {match!r}?)" if match else "")]

    return Rule(expected, check)


def nullable(rule: Rule) -> Rule:
    """``rule``, or null (the code's ``params.get(key) or default``)."""
    return Rule(f"{rule.expected} or null", lambda value, path: (None, []) if value is None else rule(value, path))


# ---------------------------------------------------------------------------------------------------------------
# rules of containers
# ---------------------------------------------------------------------------------------------------------------


def list_of(item: Rule, *, unique: bool = False, min_len: int = 0) -> Rule:
    """A list whose items follow ``item`` (paths ``key[i]``); ``unique``: no item twice."""
    expected = f"a list, each item {item.expected}" + (f" (at least {min_len})" if min_len else "")

    def check(value: Any, path: str) -> tuple[Any, Problems]:
        if not isinstance(value, list | tuple) or len(value) < min_len:
            return value, [bad(path, expected, value)]
        out, problems = [], []
        for i, v in enumerate(value):
            v, found = item(v, f"{path}[{i}]")
            out.append(v)
            problems += found
        if unique:
            for i, v in enumerate(out):
                if isinstance(v, str | int) and v in out[:i]:
                    each = "name" if isinstance(v, str) else "value"
                    problems.append(f"{path}[{i}]: {v!r} is listed twice (each {each} once)")
        return out, problems

    return Rule(expected, check)


def mapping_of(value_rule: Rule, *, what: str = "name", min_len: int = 0) -> Rule:
    """A mapping of string keys (``what``: a profile, a run, ...) to values that follow ``value_rule``."""
    expected = f"a mapping of {what} -> {value_rule.expected}"

    def check(value: Any, path: str) -> tuple[Any, Problems]:
        if not isinstance(value, dict) or len(value) < min_len:
            return value, [bad(path, expected + (f" (at least {min_len})" if min_len else ""), value)]
        out, problems = {}, []
        for k, v in value.items():
            if not isinstance(k, str) or not k:
                problems.append(f"{join(path, k)}: the {what} {k!r} must be a non-empty string")
            out[k], found = value_rule(v, join(path, k))
            problems += found
        return out, problems

    return Rule(expected, check)


def record(keys: dict[str, Key], *, expected: str = "a mapping", post: Check | None = None) -> Rule:
    """A mapping with these ``keys``: each required key present, no key it does not know (with the
    nearest known key as a hint), each value following its rule; then ``post`` (a check of the
    values together) where the values passed."""

    def check(value: Any, path: str) -> tuple[Any, Problems]:
        if not isinstance(value, dict):
            return value, [bad(path or "the file", expected, value)]
        out, problems = {}, []
        for name, v in value.items():  # in the file's order, kept in the copy
            if name in keys:
                out[name], found = keys[name].rule(v, join(path, name))
                problems += found
            else:
                out[name] = v
                problems.append(unknown(join(path, name), name, keys))
        problems += [f"{join(path, name)} is missing: it must be {key.rule.expected}"
                     for name, key in keys.items() if key.required and name not in value]
        if post is not None and not problems:
            out, problems = post(out, path)
        return out, problems

    return Rule(expected, check)


# ---------------------------------------------------------------------------------------------------------------
# the schema of params.yaml
# ---------------------------------------------------------------------------------------------------------------


def _is_hex_digest(text: str) -> bool:
    return 8 <= len(text.strip()) <= 64 and all(c in "0123456789abcdef" for c in text.strip().lower())


def image_size(*, synth: bool) -> Rule:
    """``data.image_size`` (ld.profiles.image_scale; ld.data.synth.SynthSpec): an int (square images) or
    ``[long, short]`` edges; the synth generator draws square images of at least 32 pixels."""
    side = integer(32 if synth else 1)
    expected = ("an int or [long, short] edges: an int >= 32 for the synth layout (square images)" if synth
                else "an int or [long, short] edges (positive integers)")

    def check(value: Any, path: str) -> tuple[Any, Problems]:
        if synth or not isinstance(value, list | tuple):
            value, problems = side(value, path)
            return value, [bad(path, expected, value)] if problems else []
        if len(value) != 2:
            return value, [bad(path, expected, value)]
        pair = [integer(1)(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if any(problems for _, problems in pair):
            return value, [bad(path, expected, value)]
        return [v for v, _ in pair], []

    return Rule(expected, check)


def _steps_within_epochs(spec: dict[str, Any], path: str) -> tuple[Any, Problems]:
    """ld.profiles.schedule: the LR steps increase and lie in [1, epochs]."""
    epochs, steps = spec["epochs"], spec["steps"]
    if steps != sorted(set(steps)) or any(not 0 < s <= epochs for s in steps):
        return spec, [bad(join(path, "steps"), f"the LR steps increasing epochs in [1, epochs] (epochs: {epochs})",
                          steps)]
    return spec, []


def _profile_data(synth_rule: Rule, real_rule: Rule) -> Rule:
    """``data``: ``layout`` (ld.data.prepare.layout_of) picks the keys the rest may have."""
    expected = "a mapping: {layout: synth|coco|voc, ...}"

    def check(value: Any, path: str) -> tuple[Any, Problems]:
        if not isinstance(value, dict):
            return value, [bad(path, expected, value)]
        layout = value.get("layout", "synth")
        if layout not in LAYOUTS:
            _, problems = choice(LAYOUTS)(layout, join(path, "layout"))
            return value, problems
        return (synth_rule if layout == "synth" else real_rule)(value, path)

    return Rule(expected, check)


@cache
def schema() -> Rule:
    """The rule of the whole file. Where each key is read is noted beside it."""
    run = string("a run name (a config of pipelines/configs/)")
    # ld.data.synth.SynthSpec(**data) (ld.data.prepare.prepare_dataset): every key but layout is a field
    synth = record({
        "layout": optional(choice(["synth"])),
        "num_train": required(integer(1)),
        "num_val": required(integer(1)),
        "image_size": required(image_size(synth=True)),
        "max_objects": required(integer(1)),
        "seed": required(integer(0)),
        "jpeg_quality": optional(integer(1, 100)),
        "max_occlusion": optional(number(0, 1, above=True, below=True)),
    })
    # ld.data.prepare (layout_of, prepare_dataset: root) and ld.profiles._apply_data (image_size)
    real = record({
        "layout": required(choice(["coco", "voc"])),
        "root": required(string("the dataset's folder (a non-empty string)")),
        "image_size": required(image_size(synth=False)),
        # ld.data.prepare.voc_classes: a VOCdevkit's own class names, in label order (COCO JSON lists its own)
        "classes": optional(list_of(string("a class name (a non-empty string)"), unique=True, min_len=1)),
    })
    # ld.profiles.apply_profile
    model = record({
        "channels": required(integer(1)),
        "stacked_convs": required(integer(0)),
        "anchor_scale": optional(integer(1)),
    })
    schedule = record({"epochs": required(integer(1)), "steps": required(list_of(integer(1)))},
                      expected="{epochs: N, steps: [...]}", post=_steps_within_epochs)  # ld.profiles.schedule
    profile = record({
        "data": required(_profile_data(synth, real)),
        "model": required(model),
        "schedules": required(mapping_of(schedule, what="schedule name", min_len=1)),
        "batch_size": optional(nullable(integer(1))),  # null: each row's samples_per_gpu
        "base_lr": required(number(0, above=True)),  # ld.profiles.scaled_lr
        "warmup_iters": required(integer(0)),
        "workers": optional(integer(0)),
        "checkpoint_interval": optional(integer(1)),
        "log_interval": optional(integer(1)),  # apply_profile: max(1, ...): 0 would silently be 1
        "repeat": optional(integer(1)),
        "multiscale": optional(boolean()),
        "pretrained": optional(boolean()),
        "deterministic": optional(boolean()),  # ld.cpu_pinning: the CPU kernels pinned, the same bits anywhere
        # ld.results.report (a banner atop every page) and notebooks/claims.ipynb (no verdict colours)
        "caveat": optional(nullable(string("a sentence saying why the profile's numbers are not to be read"))),
    })
    # ld.engine.train.apply_ld_params and build_train_config
    ld = record({
        "temperature": optional(number(0, above=True)),
        "loss_weight": optional(number(0)),
        "teacher_cache": optional(boolean()),
        "teacher_precision": optional(choice(TEACHER_PRECISIONS)),
    })
    # dvc.yaml's teacher stage -> ld.cli teacher import
    # (--sha256, --published-ap; ld.engine.teacher_import.check_sha256)
    teacher = record({
        "checkpoint": required(string("a checkpoint path or URL (a non-empty string)")),
        "sha256": required(string("8 to 64 hex digits of the file's SHA-256 (a string)", valid=_is_hex_digest,
                                  hint=" (quote it: YAML reads an all-digit value as a number)")),
        "published_ap": required(number(0, 100)),
    })
    return record({
        "profile": required(string("the name of a profile of `profiles`")),
        "seed": optional(integer(0, SEED_MAX)),  # ld.engine.train (cfg.randomness), ld.layout.study_seeds
        "num_gpus": optional(integer(1)),  # ld.engine.train, ld.profiles.scaled_lr
        "ld": optional(nullable(ld)),
        "profiles": required(mapping_of(profile, what="profile name", min_len=1)),
        # notebooks/ambiguity.ipynb, dvc.yaml's report stage, pipelines/bench
        "analysis": optional(record({role: required(run) for role in ANALYSIS_ROLES})),
        # ld.layout.study_runs / study_seeds, notebooks/seeds_table.ipynb, dvc.yaml's seeds stages
        "study": optional(nullable(record({
            "baselines": optional(nullable(list_of(run, unique=True))),
            "students": optional(nullable(mapping_of(record({"teacher": required(run)}), what="run"))),
            # runs of the study only (study_runs, the seeds_imitation stages)
            "imitation": optional(nullable(mapping_of(record({"teacher": required(run)}), what="run"))),
            # study_seeds iterates seeds[profile]: a list (null there would crash), the whole mapping may be null
            "seeds": optional(nullable(mapping_of(list_of(integer(0, SEED_MAX)), what="profile name"))),
            # the runs a profile's other seeds train (study_seeds(run=)); a profile without an entry: all
            "seeded": optional(nullable(mapping_of(list_of(run, unique=True), what="profile name"))),
            # seeds beyond `seeds` for some runs (study_seeds(run=)): the runs of undecided claims
            "more_seeds": optional(nullable(mapping_of(record({
                "seeds": required(list_of(integer(0, SEED_MAX), unique=True)),
                "runs": required(list_of(run, unique=True)),
            }), what="profile name"))),
        }))),
        # ld.results.paper.TABLES; dvc.yaml paper_table
        "paper_tables": optional(list_of(choice(PAPER_TABLES), unique=True)),
        "train": optional(nullable(list_of(run, unique=True))),
        "teachers": optional(nullable(mapping_of(teacher, what="run"))),
        "distill": optional(nullable(mapping_of(record({"teacher": required(run)}), what="run"))),
    }, expected="a mapping (the parsed params.yaml)")


# ---------------------------------------------------------------------------------------------------------------
# the keys together
# ---------------------------------------------------------------------------------------------------------------


def _mapping(params: dict[str, Any], key: str) -> dict[str, Any]:
    value = params.get(key)
    return value if isinstance(value, dict) else {}


def _names(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple | dict) else []


def check_profile_choice(params: dict[str, Any]) -> Problems:
    """``profile`` names one of ``profiles`` (ld.profiles.get_profile); ``study.seeds`` and
    ``study.seeded`` and ``study.more_seeds`` list profiles."""
    profiles = _mapping(params, "profiles")
    problems = []
    name = params.get("profile")
    if isinstance(name, str) and name and profiles and name not in profiles:
        problems.append(unknown("profile", name, profiles, what="profile"))
    for key in ("seeds", "seeded", "more_seeds"):
        for name in _mapping(_mapping(params, "study"), key):
            if profiles and name not in profiles:
                problems.append(unknown(f"study.{key}.{name}", name, profiles, what="profile"))
    return problems


def check_runs(params: dict[str, Any], *, analysis_runs: bool = True) -> Problems:
    """The runs name each other consistently: each run is trained, imported or distilled (one of them);
    a student's teacher is one of those runs, with no cycle; ``analysis`` and ``study`` name runs of the
    pipeline and the study's students distil from the study's teacher (Self-LD: from its baseline)."""
    train = _names(params.get("train"))
    teachers = _names(_mapping(params, "teachers"))
    distill = {run: spec.get("teacher") for run, spec in _mapping(params, "distill").items()
               if isinstance(spec, dict) and isinstance(spec.get("teacher"), str)}
    problems = []
    for i, run in enumerate(train):
        if run in teachers:
            problems.append(f"train[{i}]: {run!r} is also in teachers: a run is trained or imported, "
                            "not both (remove it from one)")
        if run in distill:
            problems.append(f"train[{i}]: {run!r} is also in distill: a run is trained or distilled, not both")
    for run in teachers:
        if run in distill:
            problems.append(f"teachers.{run}: {run!r} is also in distill: a run is imported or distilled, not both")
    runs, expected = [*train, *teachers, *distill], "a run of train, teachers or distill"
    for run, teacher in distill.items():
        path = f"distill.{run}.teacher"
        if teacher == run:
            problems.append(f"{path}: the run {run!r} cannot be its own teacher")
        elif teacher not in runs:
            problems.append(_not_a_run(path, teacher, runs, expected))
    problems += _teacher_cycles(distill)
    if not analysis_runs:
        return problems
    analysis = _mapping(params, "analysis")
    for role in ANALYSIS_ROLES:
        if isinstance(analysis.get(role), str) and analysis[role] not in runs:
            problems.append(_not_a_run(f"analysis.{role}", analysis[role], runs, expected))
    return problems + _check_study(_mapping(params, "study"), [*train, *teachers], distill)


def _not_a_run(path: str, name: str, runs: list[str], expected: str) -> str:
    match = closest(name, runs)
    return f"{path} must be {expected}, got {name!r}" + (f" (did you mean {match!r}?)" if match else "")


def _teacher_cycles(distill: dict[str, str]) -> Problems:
    """Students that are, through their teachers, their own teacher (DVC would refuse the cycle)."""
    problems, reported = [], set()
    for start in distill:
        chain, run = [start], distill[start]
        while run in distill and run not in chain:
            chain.append(run)
            run = distill[run]
        if run == start and len(chain) > 1 and not reported & set(chain):
            reported |= set(chain)
            problems.append(f"distill.{start}.teacher: the teachers form a cycle: {' -> '.join([*chain, start])}")
    return problems


def _check_study(study: dict[str, Any], trained: list[str], distill: dict[str, str]) -> Problems:
    """ld.layout.study_runs: the study's baselines are trained runs, its students distilled runs
    with the teacher `distill` gives them (the seeds stage depends on that model), its runs of the study only
    no run of the pipeline, each with a teacher the pipeline makes; ld.layout.study_seeds: the runs of
    ``seeded`` and ``more_seeds`` are study runs, ``more_seeds`` adds seeds to seeded runs, none of the
    profile's ``seeds``."""
    problems = []
    for i, run in enumerate(_names(study.get("baselines"))):
        if run not in trained:
            problems.append(_not_a_run(f"study.baselines[{i}]", run, trained, "a run of train or teachers"))
    for run, spec in _mapping(study, "students").items():
        teacher = spec.get("teacher") if isinstance(spec, dict) else None
        if run not in distill:
            problems.append(_not_a_run(f"study.students.{run}", run, list(distill), "a run of distill"))
        elif isinstance(teacher, str) and distill[run] != teacher:
            problems.append(f"study.students.{run}.teacher: {teacher!r}, but distill.{run}.teacher is "
                            f"{distill[run]!r} (they must agree)")
    runs = [*trained, *distill]
    for run, spec in _mapping(study, "imitation").items():
        teacher = spec.get("teacher") if isinstance(spec, dict) else None
        if run in runs:
            problems.append(f"study.imitation.{run}: {run!r} is also a run of train, teachers or distill: a run "
                            "of the study only is trained by its seeds stage alone (remove it from one)")
        if isinstance(teacher, str) and teacher not in runs:
            problems.append(_not_a_run(f"study.imitation.{run}.teacher", teacher, runs,
                                       "a run of train, teachers or distill"))
    studied = [*_names(study.get("baselines")), *_mapping(study, "students"), *_mapping(study, "imitation")]
    for profile, seeded in _mapping(study, "seeded").items():
        for i, run in enumerate(_names(seeded)):
            if run not in studied:
                problems.append(_not_a_run(f"study.seeded.{profile}[{i}]", run, studied,
                                           "a run of study.baselines, study.students or study.imitation"))
    for profile, more in _mapping(study, "more_seeds").items():
        more = more if isinstance(more, dict) else {}
        seeded = _mapping(study, "seeded").get(profile)
        for i, run in enumerate(_names(more.get("runs"))):
            if run not in studied:
                problems.append(_not_a_run(f"study.more_seeds.{profile}.runs[{i}]", run, studied,
                                           "a run of study.baselines, study.students or study.imitation"))
            elif isinstance(seeded, list) and run not in seeded:
                problems.append(f"study.more_seeds.{profile}.runs[{i}]: {run!r} is not in study.seeded.{profile}, "
                                "whose other seeds it would follow (add it there, or remove it here)")
        seeds = _mapping(study, "seeds").get(profile)
        for i, seed in enumerate(more.get("seeds") if isinstance(more.get("seeds"), list) else []):
            if isinstance(seeds, list) and seed in seeds:
                problems.append(f"study.more_seeds.{profile}.seeds[{i}]: {seed} is already a seed of every run "
                                f"(study.seeds.{profile}): give seeds beyond those")
    return problems


# ---------------------------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------------------------


def check_params(params: Any, *, analysis_runs: bool = True) -> tuple[Any, Problems]:
    """``(normalised copy of params, every problem found)``; no exception."""
    normalised, problems = schema()(copy.deepcopy(params), "")
    if isinstance(params, dict):
        problems += check_profile_choice(params) + check_runs(params, analysis_runs=analysis_runs)
    return normalised, problems


def validate_params(params: dict[str, Any], path: str | Path = "params.yaml", *,
                    analysis_runs: bool = True) -> dict[str, Any]:
    """Check the whole parsed ``params.yaml`` and return it (a copy, integral floats of int fields as ints).

    Raises ConfigError with one message naming ``path`` and listing every problem: each key path, what
    is wrong and what is expected (a misspelt key: the nearest known key). ``analysis_runs=False`` skips
    the check that ``analysis`` and ``study`` name runs of ``train`` / ``teachers`` / ``distill`` (those
    sections are read by the report, seeds and bench stages only; ``ld paper run`` replaces the runs and
    keeps them, so its experiments fail that check).
    """
    normalised, problems = check_params(params, analysis_runs=analysis_runs)
    if problems:
        raise ConfigError(format_problems(path, problems))
    return normalised
