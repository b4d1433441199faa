"""dvc.yaml as a graph: a stage that reads the dataset depends on it, so `dvc repro <target>` builds it first;
and each stage depends on what it reads, no more: the `ld/` modules its command imports (found here by
parsing the code, so the lists in dvc.yaml cannot drift from the imports), its own row configs and the
params it reads."""
from __future__ import annotations

import ast
import json
import re
import shlex
from functools import cache
from pathlib import Path

import pytest
import yaml

from ld import code_deps
from ld.cli import build_parser
from tests.conftest import REPO

PARSER = build_parser()  # ld.code_deps reads a command's handler from the `ld` parser it is handed

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
BENCH = yaml.safe_load((REPO / "pipelines/bench/dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
ALL = {**{name: (stage, "dvc.yaml") for name, stage in STAGES.items()},
       **{f"bench:{name}": (stage, "pipelines/bench/dvc.yaml") for name, stage in BENCH.items()}}
# `ld` subcommands that read data/<profile>: training, evaluation, the seed study, the ambiguity analysis
READS_DATA = re.compile(r"\bld --profile \$\{profile\} (train|eval|seeds|notebook notebooks/ambiguity)\b")


def _body(stage):
    return stage.get("do", stage)


def _deps(stage) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in _body(stage).get("deps", [])]


def _params(stage) -> list[str]:
    return [p for p in _body(stage).get("params", []) if isinstance(p, str)]


@pytest.mark.parametrize("name", [n for n, s in STAGES.items() if READS_DATA.search(_body(s)["cmd"])])
def test_a_stage_that_reads_the_dataset_depends_on_it(name):
    assert "data/${profile}" in _body(STAGES[name])["deps"], name


def test_the_rule_covers_every_evaluation_stage():
    assert {"eval", "eval_distill", "eval_teacher", "ambiguity", "seeds_train", "seeds_distill"} <= {
        n for n, s in STAGES.items() if READS_DATA.search(_body(s)["cmd"])}


# ---------------------------------------------------------------------------------------------------------------
# the ld/ modules a stage's command runs: its kind's fingerprint (dvc.yaml's `code` stages, ld/code_deps.py)
# ---------------------------------------------------------------------------------------------------------------

CODE = _body(STAGES["code"])
KINDS = STAGES["code"]["foreach"]  # kind -> a command of that kind (`ld` arguments)
FINGERPRINT = re.compile(r"^pipelines/code/(\w+)\.json$")


def _argv(cmd: str) -> list[str]:
    """A stage's ``ld ...`` command as argv, its ``${...}`` placeholders as a value every option takes."""
    words = shlex.split(re.sub(r"\$\{[^}]*\}", "0", cmd))
    assert words[0] == "ld", cmd
    return words[1:]


def _kind(name: str) -> str:
    kinds = [m.group(1) for d in _deps(STAGES[name]) if (m := FINGERPRINT.match(d))]
    assert len(kinds) == 1, f"dvc.yaml: stage {name} names {len(kinds)} code fingerprints: {kinds}"
    return kinds[0]


def imported_files(stage) -> set[str]:
    """The ld/ files (repo-relative) that a stage's command runs: for an ``ld`` command, ld.code_deps'
    closure; for a script (the benchmark's), its imports and the configs' custom_imports (it builds models)."""
    cmd = _body(stage)["cmd"]
    words = shlex.split(re.sub(r"\$\{[^}]*\}", "0", cmd))
    if words[0] != "python":
        return set(code_deps.command_files(_argv(cmd), PARSER))
    modules = code_deps.imports([code_deps.tree(f) for f in _scripts(REPO / words[1])])
    modules |= set(code_deps.custom_imports())  # it builds models
    return {str(f.relative_to(REPO)) for f in code_deps.closure(modules)}


def _scripts(script: Path) -> set[Path]:
    """A Python script and the scripts beside it that it imports (bench.py: ``import nms``), transitively."""
    files, todo = set(), [script]
    while todo:
        file = todo.pop()
        if file in files:
            continue
        files.add(file)
        for node in ast.walk(code_deps.tree(file)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            todo += [file.parent / f"{n}.py" for n in names if (file.parent / f"{n}.py").is_file()]
    return files


def listed_files(stage) -> set[str]:
    return {d for d in _deps(stage) if d == "ld" or d.startswith("ld/")}


COMMANDS = [name for name, stage in STAGES.items() if name != "code" and _body(stage)["cmd"].startswith("ld ")]


@pytest.mark.parametrize("name", COMMANDS)
def test_a_stage_depends_on_the_fingerprint_of_a_command_that_runs_its_files(name):
    """The stage's own command and the one its fingerprint was made of run the same ld/ files (train and
    distill share one, the three evaluations another), and it lists no ld/ file or folder of its own."""
    stage = STAGES[name]
    assert not listed_files(stage), f"dvc.yaml: stage {name} lists ld/ paths: depend on a fingerprint instead"
    kind = _kind(name)
    assert imported_files(stage) == set(code_deps.command_files(shlex.split(KINDS[kind]), PARSER)), (name, kind)


def test_every_fingerprint_has_its_code_stage_and_is_the_codes():
    """Each kind a stage names has a `code` stage; each committed fingerprint is what the code gives today
    (a stale one means `dvc repro code` was not run after an edit of ld/)."""
    assert {_kind(name) for name in COMMANDS} == set(KINDS)
    assert CODE["cmd"] == "ld code-deps pipelines/code/${key}.json ${item}"
    assert set(CODE["deps"]) >= {"ld", "notebooks", code_deps.CONFIG_PARTS}
    for kind, command in KINDS.items():
        committed = json.loads((REPO / "pipelines" / "code" / f"{kind}.json").read_text())
        assert committed == code_deps.fingerprint(shlex.split(command), PARSER), f"pipelines/code/{kind}.json is stale"


def test_an_edit_of_one_module_changes_the_fingerprints_of_the_commands_that_run_it_alone():
    """A one-file edit reruns only the stages whose commands import the file: the file is in exactly the
    fingerprints whose closure reaches it (its hash moves there, nowhere else)."""
    prints = {kind: code_deps.fingerprint(shlex.split(command), PARSER)["files"] for kind, command in KINDS.items()}
    assert {k for k, files in prints.items() if "ld/results/claims.py" in files} == {"claims"}
    assert {k for k, files in prints.items() if "ld/engine/train.py" in files} == {"train", "seeds"}
    assert {k for k, files in prints.items() if "ld/engine/evaluate.py" in files} == {"eval", "seeds"}
    assert all("ld/cli.py" in files for files in prints.values())
    assert "ld/models/ld_head.py" in prints["train"] and "ld/models/ld_head.py" not in prints["runs_table"]


@pytest.mark.parametrize("name", sorted(BENCH))
def test_a_bench_stage_lists_the_ld_modules_its_command_imports_and_no_other(name):
    """The benchmark's pipeline (pipelines/bench/dvc.yaml) keeps its lists (its script is not an `ld` command)."""
    stage = BENCH[name]
    listed, imported = listed_files(stage), imported_files(stage)
    assert listed == imported, (f"bench: stage {name}: listed but not imported: {sorted(listed - imported)}; "
                                f"imported but not listed: {sorted(imported - listed)}")


def test_the_import_walk_sees_lazy_imports_packages_and_custom_imports():
    """The walk itself: a handler's lazy imports (the seed study's training and evaluation, imported in a
    loop), package __init__ files, the configs' custom_imports and a notebook's imports are all followed."""
    train = imported_files(STAGES["train"])
    assert {"ld/__init__.py", "ld/cli.py", "ld/engine/__init__.py", "ld/engine/train.py", "ld/models/__init__.py",
            "ld/params_check.py", "ld/engine/live.py", "ld/engine/determinism.py"} <= train
    assert "ld/engine/evaluate.py" not in train and "ld/data/synth.py" not in imported_files(STAGES["eval"])
    assert {"ld/engine/train.py", "ld/engine/evaluate.py"} <= imported_files(STAGES["seeds_distill"])
    assert "ld/engine/train.py" not in imported_files(STAGES["seeds_table"])  # the study's plan alone
    assert "ld/results/analysis.py" in imported_files(STAGES["ambiguity"])
    assert "ld/results/claims.py" in imported_files(STAGES["claims"])
    assert "ld/layout.py" in imported_files(STAGES["seeds_table"])  # notebooks/seeds_table.ipynb's import
    assert "ld/results/notebooks.py" in imported_files(STAGES["table"])
    # an option's type= function runs (and imports) only for a command that gives the option
    cli = code_deps.tree(REPO / "ld/cli.py")
    plain = code_deps.cli_imports(["eval", "c.py", "--out", "m.json"], PARSER)
    assert not {m for m in plain if m.startswith("ld.models")}
    for function in [f for f, options in code_deps.option_types(cli).items() if "--nms" in options]:
        lazy = code_deps.imports([next(n for n in cli.body if isinstance(n, ast.FunctionDef) and n.name == function)],
                                 "ld")
        assert lazy <= code_deps.cli_imports(["eval", "c.py", "--out", "m.json", "--nms", "nms"], PARSER)
        assert not lazy <= plain
    assert "pipelines/bench/nms.py" in {str(p.relative_to(REPO)) for p in _scripts(REPO / "pipelines/bench/bench.py")}


def test_the_executed_notebooks_and_scripts_are_deps():
    for name, (stage, where) in ALL.items():
        if name == "code":
            continue
        cmd, deps = _body(stage)["cmd"], _deps(stage)
        words = shlex.split(re.sub(r"\$\{[^}]*\}", "0", cmd))
        if words[0] == "python":
            scripts = {str(p.relative_to(REPO)) for p in _scripts(REPO / words[1])}
            assert scripts <= set(deps), f"{where}: {name}"
            continue
        handler = code_deps.handler(_argv(cmd), PARSER)
        notebooks = ([a for a in words if a.startswith("notebooks/")] if handler == "_cmd_notebook" else
                     code_deps.report_notebooks() if handler == "_cmd_report" else [])
        assert set(notebooks) <= set(deps), f"{where}: {name}"


# ---------------------------------------------------------------------------------------------------------------
# the copies that YAML cannot share
# ---------------------------------------------------------------------------------------------------------------

def test_the_training_stages_share_their_code():
    assert _kind("train") == _kind("distill") and _kind("seeds_train") == _kind("seeds_distill") == "seeds"
    seeds = set(code_deps.command_files(shlex.split(KINDS["seeds"]), PARSER))
    # the seed study trains and evaluates
    assert {*code_deps.command_files(shlex.split(KINDS["train"]), PARSER),
            *code_deps.command_files(shlex.split(KINDS["eval"]), PARSER)} <= seeds


def test_the_evaluation_stages_share_their_deps():
    deps = {name: [d for d in _deps(STAGES[name]) if "${key}" not in d and "${item.run}" not in d]
            for name in ("eval", "eval_distill", "eval_teacher")}
    assert deps["eval"] == deps["eval_distill"] == deps["eval_teacher"]
    # an exported run's config.py holds what it needs; the CPU kernels it runs on are the profile's
    assert [_params(STAGES[n]) for n in deps] == [[PINNED]] * 3


# ---------------------------------------------------------------------------------------------------------------
# configs and params: each stage's own
# ---------------------------------------------------------------------------------------------------------------

CONFIGS = "pipelines/configs"


@pytest.mark.parametrize("name,configs", [
    ("train", {"pipelines/configs/${item.run}.py"}),
    ("distill", {"pipelines/configs/${key}.py"}),
    ("teacher", {"pipelines/configs/${key}.py"}),
    ("seeds_train", {"pipelines/configs/${item}.py"}),
    ("seeds_distill", {"pipelines/configs/${key}.py"}),
])
def test_a_training_stage_depends_on_its_row_configs_and_the_shared_parts_only(name, configs):
    listed = {d for d in _deps(STAGES[name]) if d.startswith(CONFIGS)}
    assert listed == configs | {f"{CONFIGS}/_base_"}, name


def _bases(config: Path) -> list[Path]:
    """The files of this repository that a config's ``_base_`` names, resolved from its folder (a package's
    ``mmdet::...`` config comes with the installed mmdet)."""
    for node in code_deps.tree(config).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            bases = ast.literal_eval(node.value)
            return [(config.parent / b).resolve() for b in ([bases] if isinstance(bases, str) else bases)
                    if "::" not in b]
    return []


def test_a_row_config_inherits_from_the_shared_parts_only():
    """A training stage depends on its row's file and on `_base_`, not on the other rows: so a row may
    inherit from `_base_/` parts only (otherwise an edit of the row it inherits would not retrain it)."""
    base_dir = (REPO / CONFIGS / "_base_").resolve()
    wrong = {}
    for row in sorted((REPO / CONFIGS).glob("*.py")):
        todo, seen = _bases(row), set()
        while todo:
            file = todo.pop()
            if file not in seen:
                seen.add(file)
                todo += _bases(file)
        if outside := sorted(str(f.relative_to(REPO)) for f in seen if not f.is_relative_to(base_dir)):
            wrong[row.name] = outside
    assert not wrong, f"row configs inheriting from outside {CONFIGS}/_base_ ({len(wrong)}): {wrong}"


def test_the_seed_study_depends_on_each_run_and_its_teacher_alone():
    """One stage per study run: its row config, its teacher's model and params entries, not all of `study`
    or `distill` (adding a student to the study trains nothing else again)."""
    student = _body(STAGES["seeds_distill"])
    assert STAGES["seeds_distill"]["foreach"] == "${study.students}"
    assert STAGES["seeds_train"]["foreach"] == "${study.baselines}"
    assert "models/${profile}/${item.teacher}" in _deps(STAGES["seeds_distill"])
    assert {p for p in _params(STAGES["seeds_distill"]) if p.startswith(("study", "distill"))} == {
        "study.seeds", "study.seeded", "study.more_seeds", "study.students.${key}", "distill.${key}.teacher"}
    assert {p for p in _params(STAGES["seeds_train"]) if p.startswith(("study", "distill"))} == {
        "study.seeds", "study.seeded", "study.more_seeds"}
    assert "models/${profile}/seeds/${key}" in student["outs"]


def test_the_bench_depends_on_the_configs_it_times_and_their_teachers():
    from mmengine.config import Config

    tree = code_deps.tree(REPO / "pipelines/bench/bench.py")
    rows = {row for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
            and any(isinstance(t, ast.Name) and t.id.endswith("STEP_VARIANTS")
                    for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))
            for row, *_ in ast.literal_eval(n.value).values()}
    assert {"gfl_r18_1x", "ld_r18_gfl_r50_1x", "ld_r18_gfl_r101_1x"} <= rows  # both shapes' variants
    teachers = {Config.fromfile(str(REPO / CONFIGS / f"{row}.py"), import_custom_modules=False).get("teacher")
                for row in rows}
    bench = BENCH["bench"]
    assert {d for d in _deps(bench) if d.startswith(CONFIGS)} == {
        f"{CONFIGS}/{run}.py" for run in rows | teachers - {None}} | {f"{CONFIGS}/_base_"}
    assert not any(p.startswith("distill") for p in _params(bench))  # the teachers are the configs' own


def test_no_other_stage_depends_on_a_whole_config_folder():
    for name, (stage, where) in ALL.items():
        assert CONFIGS not in _deps(stage) and f"{CONFIGS}/" not in _deps(stage), f"{where}: {name}"


@cache
def _profile_keys_read() -> frozenset[str]:
    """The profile keys ld/profiles.py and ld/data/prepare.py read: ``profile["key"]``, ``profile.get("key")``."""
    keys = set()
    for file in ("ld/profiles.py", "ld/data/prepare.py"):
        for node in ast.walk(code_deps.tree(REPO / file)):
            if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "profile"
                    and isinstance(node.slice, ast.Constant)):
                keys.add(node.slice.value)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                  and isinstance(node.func.value, ast.Name) and node.func.value.id == "profile" and node.args
                  and isinstance(node.args[0], ast.Constant)):
                keys.add(node.args[0].value)
    return frozenset(keys)


# how a run is executed, not what it learns: changing them does not retrain
NOT_THE_MODEL = {"workers", "checkpoint_interval"}
# the deterministic mode (read by ld/cpu_pinning.py, before torch starts): other kernels, other bits, for every
# stage that computes with torch; importing a released teacher computes nothing
PINNED = "profiles.${profile}.deterministic"
COMPUTING = ["train", "distill", "seeds_train", "seeds_distill", "eval", "eval_distill", "eval_teacher",
             "ambiguity", "report"]
TRAINING = ["train", "distill", "seeds_train", "seeds_distill", "teacher"]


@pytest.mark.parametrize("name", TRAINING + ["bench:bench"])
def test_a_training_stage_has_the_profile_keys_that_change_the_model(name):
    stage, _ = ALL[name]
    prefix = "profiles.${profile}."
    listed = {p.removeprefix(prefix) for p in _params(stage) if p.startswith(prefix)}
    assert "profiles.${profile}" not in _params(stage)
    assert "data" in _profile_keys_read() and "warmup_iters" in _profile_keys_read()  # the walk finds them
    assert listed - {"deterministic"} == set(_profile_keys_read()) - NOT_THE_MODEL, name


@pytest.mark.parametrize("name", COMPUTING)
def test_a_stage_that_computes_lists_the_deterministic_mode(name):
    assert PINNED in _params(STAGES[name])
    assert PINNED not in _params(STAGES["teacher"]) and '"deterministic"' in (REPO / "ld/cpu_pinning.py").read_text()


@pytest.mark.parametrize("name", TRAINING)
def test_a_training_stage_has_its_seed_gpus_and_ld_recipe(name):
    params = set(_params(STAGES[name]))
    ld = {"ld.temperature", "ld.loss_weight", "ld.teacher_precision"} if name in ("distill", "seeds_distill") else set()
    assert {p for p in params if p in ("seed", "num_gpus") or p.startswith("ld")} == (
        ld | ({"seed", "num_gpus"} if name != "teacher" else set()))  # an import trains nothing
    assert "ld.teacher_cache" not in params and "ld" not in params  # offline LD: the same losses, faster


def test_every_profile_gives_every_key_a_stage_lists():
    """DVC refuses to run a stage whose params key is missing (`Parameters 'profiles.<p>.<key>' are missing
    from 'params.yaml'`), so each profile spells out every key the stages list, defaults included."""
    listed = {p.split(".", 2)[2] for name, (stage, _) in ALL.items() for p in _params(stage)
              if p.startswith("profiles.${profile}.")}
    for profile, spec in PARAMS["profiles"].items():
        assert listed <= set(spec), f"params.yaml: profiles.{profile} lacks {sorted(listed - set(spec))}"
    assert {p for name, (stage, _) in ALL.items() for p in _params(stage) if p.startswith("ld.")} <= {
        f"ld.{k}" for k in PARAMS["ld"]}
