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

from tests.conftest import REPO

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
# the ld/ modules a stage's command imports, from the code
# ---------------------------------------------------------------------------------------------------------------

# `ld` subcommands whose handler builds models from configs (a row config, or an exported run's config.py):
# mmengine's Config.fromfile imports the configs' `custom_imports` (the report: the ambiguity notebook's models)
BUILDS_MODELS = {"_cmd_train", "_cmd_eval", "_cmd_seeds", "_cmd_teacher_import", "_cmd_bench_fps", "_cmd_report"}
# handlers that run other `ld` subcommands as subprocesses (`python -m ld.cli <subcommand> ...`)
RUNS_SUBCOMMANDS = {"_cmd_seeds": (("ld/engine/seeds.py", ["train", "x.py", "--out", "x"]),
                                   ("ld/engine/seeds.py", ["eval", "x.py", "--out", "x"]))}


def _file(module: str) -> Path | None:
    """The file of a module or package ``ld.x.y`` (``ld/x/y.py`` or ``ld/x/y/__init__.py``), or None."""
    path = REPO.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _files_of(module: str) -> set[Path]:
    """What ``import module`` runs of ld/: each package's ``__init__.py`` on the way, then the module."""
    parts, files = module.split("."), set()
    for i in range(1, len(parts) + 1):
        file = _file(".".join(parts[:i]))
        assert file is not None, f"`import {module}`: no file for {'.'.join(parts[:i])}"
        files.add(file)
    return files


def _package(file: Path) -> str:
    parts = file.relative_to(REPO).with_suffix("").parts
    return ".".join(parts if file.name == "__init__.py" else parts[:-1]).removesuffix(".__init__")


def _imports(nodes, package: str = "") -> set[str]:
    """The ``ld`` modules that ``import`` / ``from ... import`` statements anywhere in ``nodes`` import
    (in functions too: a lazy import runs when the stage calls the function)."""
    modules = set()
    for node in (n for top in nodes for n in ast.walk(top)):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names if a.name.split(".")[0] == "ld"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's package
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "ld":
                continue
            modules.add(base)
            modules |= {f"{base}.{a.name}" for a in node.names if _file(f"{base}.{a.name}")}  # submodules
    return modules


@cache
def _tree(file: Path) -> ast.Module:
    return ast.parse(file.read_text(), str(file))


def _closure(modules: set[str]) -> set[Path]:
    """Every ld/ file that importing ``modules`` runs, transitively."""
    todo = [f for m in modules for f in _files_of(m)]
    seen: set[Path] = set()
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        todo += [f for m in _imports([_tree(file)], _package(file)) for f in _files_of(m)]
    return seen


def _option_types(tree: ast.Module) -> dict[str, set[str]]:
    """``{function: its option strings}`` for the functions build_parser gives as an option's ``type=``:
    argparse calls them only for an option given on the command line."""
    types: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            for kw in node.keywords:
                if kw.arg == "type" and isinstance(kw.value, ast.Name):
                    types.setdefault(kw.value.id, set()).update(
                        a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return types


def _cli_imports(argv: list[str]) -> set[str]:
    """``ld.cli`` as the ``ld`` script runs it for one command: its module-level statements, ``main`` and
    ``build_parser``, the subcommand's handler, and any other function of it that those call (an option's
    ``type=`` function only where the command gives that option); the other handlers' lazy imports do not
    run. ``ld/cli.py`` itself is added by :func:`imported_files` (its every import is not followed)."""
    tree, handler = _tree(REPO / "ld/cli.py"), _handler(argv)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    types = _option_types(tree)
    nodes = [n for n in tree.body if not isinstance(n, ast.FunctionDef)]
    todo, reached = ["main", "build_parser", handler], set()
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        nodes.append(functions[name])
        for node in ast.walk(functions[name]):
            if isinstance(node, ast.Name) and node.id in functions and not node.id.startswith("_cmd_"):
                if node.id in types and not (types[node.id] & set(argv)):
                    continue  # an option's type=, for an option this command does not give
                todo.append(node.id)
    return _imports(nodes, "ld") | {"ld"}


def _handler(argv: list[str]) -> str:
    from ld.cli import build_parser

    return build_parser().parse_args(argv).func.__name__


def _argv(cmd: str) -> list[str]:
    """A stage's ``ld ...`` command as argv, its ``${...}`` placeholders as a value every option takes."""
    words = shlex.split(re.sub(r"\$\{[^}]*\}", "0", cmd))
    assert words[0] == "ld", cmd
    return words[1:]


def _notebook_imports(notebook: str | Path) -> set[str]:
    """The ld modules a notebook's code cells import (IPython magics and shell lines dropped)."""
    nb = json.loads((REPO / notebook).read_text())
    cells = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
             for c in nb["cells"] if c["cell_type"] == "code"]
    code = "\n".join(line for cell in cells for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))
    return _imports([ast.parse(code)])


@cache
def _custom_imports() -> frozenset[str]:
    """The modules the configs' ``custom_imports`` name (every config of pipelines/configs; an exported
    run's config.py carries its row's)."""
    modules = set()
    for config in sorted((REPO / "pipelines/configs").rglob("*.py")):
        for node in ast.walk(_tree(config)):
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "custom_imports"
                                                     for t in node.targets)):
                value = node.value
                if isinstance(value, ast.Call):  # dict(imports=[...], ...)
                    imports = next(k.value for k in value.keywords if k.arg == "imports")
                else:  # {'imports': [...], ...}
                    imports = next(v for k, v in zip(value.keys, value.values) if ast.literal_eval(k) == "imports")
                modules |= set(ast.literal_eval(imports))
    assert modules, "no config has custom_imports"
    return frozenset(modules)


def _scripts(script: Path) -> set[Path]:
    """A Python script and the scripts beside it that it imports (bench.py: ``import nms``), transitively."""
    files, todo = set(), [script]
    while todo:
        file = todo.pop()
        if file in files:
            continue
        files.add(file)
        for node in ast.walk(_tree(file)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            todo += [file.parent / f"{n}.py" for n in names if (file.parent / f"{n}.py").is_file()]
    return files


def _report_notebooks() -> list[str]:
    from ld.results.report import REPORTS

    results = Path("results/smoke")  # the report stage's own output folder: its pages with a stage are rendered
    return [f"notebooks/{report.name}.ipynb" for report in REPORTS if report.executed(results, results)]


def imported_files(stage) -> set[str]:
    """The ld/ files (repo-relative) that a stage's command runs: for an ``ld`` command, ``ld/__init__.py``,
    ``ld/cli.py`` and its handler's imports, the subcommands it runs as subprocesses, the configs'
    ``custom_imports`` where it builds models, the notebooks it executes; for a script, its imports."""
    cmd = _body(stage)["cmd"]
    words = shlex.split(re.sub(r"\$\{[^}]*\}", "0", cmd))
    if words[0] == "python":
        script = REPO / words[1]
        modules = _imports([_tree(f) for f in _scripts(script)]) | set(_custom_imports())  # it builds models
    else:
        argv = _argv(cmd)
        handler = _handler(argv)
        modules = _cli_imports(argv)
        for source, sub in RUNS_SUBCOMMANDS.get(handler, ()):
            assert {"ld.cli", sub[0]} <= {n.value for n in ast.walk(_tree(REPO / source))
                                          if isinstance(n, ast.Constant)}, (source, sub[0])
            modules |= _cli_imports(sub)
        if handler in BUILDS_MODELS:
            modules |= set(_custom_imports())
        if handler == "_cmd_notebook":
            from ld.cli import build_parser

            modules |= _notebook_imports(build_parser().parse_args(argv).src)
        if handler == "_cmd_report":
            modules |= {m for nb in _report_notebooks() for m in _notebook_imports(nb)}
    files = _closure(modules) | ({REPO / "ld/cli.py"} if words[0] == "ld" else set())
    return {str(f.relative_to(REPO)) for f in files}


def listed_files(stage) -> set[str]:
    return {d for d in _deps(stage) if d == "ld" or d.startswith("ld/")}


@pytest.mark.parametrize("name", sorted(ALL))
def test_a_stage_lists_the_ld_modules_its_command_imports_and_no_other(name):
    stage, where = ALL[name]
    listed, imported = listed_files(stage), imported_files(stage)
    assert not [d for d in listed if not d.endswith(".py")], f"{where}: {name}: list ld/ modules, not folders"
    assert listed == imported, (f"{where}: stage {name}: listed but not imported: {sorted(listed - imported)}; "
                                f"imported but not listed: {sorted(imported - listed)}")


def test_the_import_walk_sees_lazy_imports_packages_and_subprocesses():
    """The walk itself: a handler's lazy imports, package __init__ files, the seed study's subprocesses,
    the configs' custom_imports and a notebook's imports are all followed."""
    train = imported_files(STAGES["train"])
    assert {"ld/__init__.py", "ld/cli.py", "ld/engine/__init__.py", "ld/engine/train.py", "ld/models/__init__.py",
            "ld/params_check.py", "ld/engine/live.py", "ld/engine/determinism.py"} <= train
    assert "ld/engine/evaluate.py" not in train and "ld/data/synth.py" not in imported_files(STAGES["eval"])
    assert {"ld/engine/train.py", "ld/engine/evaluate.py"} <= imported_files(STAGES["seeds_distill"])
    assert "ld/results/analysis.py" in imported_files(STAGES["ambiguity"])
    assert "ld/results/claims.py" in imported_files(STAGES["claims"])
    assert "ld/engine/seeds.py" in imported_files(STAGES["seeds_table"])  # notebooks/seeds_table.ipynb's import
    assert "ld/results/notebooks.py" in imported_files(STAGES["table"])
    # an option's type= function runs (and imports) only for a command that gives the option
    cli = _tree(REPO / "ld/cli.py")
    plain = _cli_imports(["eval", "c.py", "--out", "m.json"])
    assert not {m for m in plain if m.startswith("ld.models")}
    for function in [f for f, options in _option_types(cli).items() if "--nms" in options]:
        lazy = _imports([next(n for n in cli.body if isinstance(n, ast.FunctionDef) and n.name == function)], "ld")
        assert lazy <= _cli_imports(["eval", "c.py", "--out", "m.json", "--nms", "nms"]) and not lazy <= plain
    assert "pipelines/bench/nms.py" in {str(p.relative_to(REPO)) for p in _scripts(REPO / "pipelines/bench/bench.py")}


def test_the_executed_notebooks_and_scripts_are_deps():
    for name, (stage, where) in ALL.items():
        cmd, deps = _body(stage)["cmd"], _deps(stage)
        words = shlex.split(re.sub(r"\$\{[^}]*\}", "0", cmd))
        if words[0] == "python":
            scripts = {str(p.relative_to(REPO)) for p in _scripts(REPO / words[1])}
            assert scripts <= set(deps), f"{where}: {name}"
            continue
        handler = _handler(_argv(cmd))
        notebooks = ([a for a in words if a.startswith("notebooks/")] if handler == "_cmd_notebook" else
                     _report_notebooks() if handler == "_cmd_report" else [])
        assert set(notebooks) <= set(deps), f"{where}: {name}"


# ---------------------------------------------------------------------------------------------------------------
# the copies that YAML cannot share
# ---------------------------------------------------------------------------------------------------------------

def _code(name: str) -> set[str]:
    return listed_files(STAGES[name])


def test_the_training_stages_share_their_code_deps():
    assert _code("train") == _code("distill")
    assert _code("seeds_train") == _code("seeds_distill")
    assert _code("train") | _code("eval") <= _code("seeds_train")  # the seed study trains and evaluates


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
    for node in _tree(config).body:
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
        "study.seeds", "study.students.${key}", "distill.${key}.teacher"}
    assert {p for p in _params(STAGES["seeds_train"]) if p.startswith(("study", "distill"))} == {"study.seeds"}
    assert "models/${profile}/seeds/${key}" in student["outs"]


def test_the_bench_depends_on_the_configs_it_times_and_their_teachers():
    from mmengine.config import Config

    tree = _tree(REPO / "pipelines/bench/bench.py")
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
        for node in ast.walk(_tree(REPO / file)):
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
