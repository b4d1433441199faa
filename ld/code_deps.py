"""The code a pipeline command runs: the ``ld/`` files its import closure reaches, and their fingerprint.

dvc.yaml's ``code@<kind>`` stages write ``pipelines/code/<kind>.json`` for one command of each kind (``ld
train ...``, ``ld eval ...``, ``ld notebook notebooks/claims.ipynb ...``): the files that command runs, each
with its SHA-256. The other stages depend on their kind's file instead of listing ``ld/`` files: DVC reruns
a stage when a module its command imports changed, and only then; the ``code`` stages themselves depend on
``ld/`` as a whole and take a second. The closure is read from the code (no import runs):

- ``ld/cli.py`` as the ``ld`` script runs it for that command: its module-level statements, ``main``, the
  parser, the subcommand's handler and the functions they call (an option's ``type=`` function only where
  the command gives that option), each ``import`` in them, lazy ones included;
- the configs' ``custom_imports`` where the handler builds models from a config (mmengine imports them);
- the imports of the notebooks it executes (``ld notebook``; ``ld report``: every report page's notebook);
- transitively: every ``import`` of every file reached, each package's ``__init__.py`` on the way.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG_PARTS = "pipelines/configs/_base_"  # the parts every row config inherits: where custom_imports are set
# `ld` subcommands whose handler builds models from configs (a row config, or an exported run's config.py):
# mmengine's Config.fromfile imports the configs' `custom_imports` (the report: the ambiguity notebook's models)
BUILDS_MODELS = {"_cmd_train", "_cmd_eval", "_cmd_seeds", "_cmd_teacher_import", "_cmd_bench_fps", "_cmd_report"}


def module_file(module: str) -> Path | None:
    """The file of a module or package ``ld.x.y`` (``ld/x/y.py`` or ``ld/x/y/__init__.py``), or None."""
    path = REPO.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def files_of(module: str) -> set[Path]:
    """What ``import module`` runs of ld/: each package's ``__init__.py`` on the way, then the module."""
    parts, files = module.split("."), set()
    for i in range(1, len(parts) + 1):
        file = module_file(".".join(parts[:i]))
        if file is None:
            raise ValueError(f"`import {module}`: no file for {'.'.join(parts[:i])}")
        files.add(file)
    return files


def _package(file: Path) -> str:
    parts = file.relative_to(REPO).with_suffix("").parts
    return ".".join(parts if file.name == "__init__.py" else parts[:-1]).removesuffix(".__init__")


def imports(nodes, package: str = "") -> set[str]:
    """The ``ld`` modules that ``import`` / ``from ... import`` statements anywhere in ``nodes`` import
    (in functions too: a lazy import runs when the command calls the function)."""
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
            modules |= {f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}")}  # submodules
    return modules


@cache
def tree(file: Path) -> ast.Module:
    return ast.parse(file.read_text(encoding="utf-8"), str(file))


def closure(modules: set[str]) -> set[Path]:
    """Every ld/ file that importing ``modules`` runs, transitively."""
    todo = [f for m in modules for f in files_of(m)]
    seen: set[Path] = set()
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        todo += [f for m in imports([tree(file)], _package(file)) for f in files_of(m)]
    return seen


def option_types(cli: ast.Module) -> dict[str, set[str]]:
    """``{function: its option strings}`` for the functions build_parser gives as an option's ``type=``:
    argparse calls them only for an option given on the command line."""
    types: dict[str, set[str]] = {}
    for node in ast.walk(cli):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            for kw in node.keywords:
                if kw.arg == "type" and isinstance(kw.value, ast.Name):
                    types.setdefault(kw.value.id, set()).update(
                        a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return types


def handler(argv: list[str], parser: argparse.ArgumentParser) -> str:
    """The name of the ``ld/cli.py`` function that runs ``ld ARGV`` (``parser``: ``ld.cli.build_parser()``,
    handed in by the caller: this module reads ``ld/cli.py``, and ``ld code-deps`` runs it)."""
    return parser.parse_args(argv).func.__name__


def cli_imports(argv: list[str], parser: argparse.ArgumentParser) -> set[str]:
    """The modules ``ld/cli.py`` imports when the ``ld`` script runs ``ARGV`` (see the module's text)."""
    cli, name = tree(REPO / "ld/cli.py"), handler(argv, parser)
    functions = {n.name: n for n in cli.body if isinstance(n, ast.FunctionDef)}
    types = option_types(cli)
    nodes = [n for n in cli.body if not isinstance(n, ast.FunctionDef)]
    todo, reached = ["main", "build_parser", name], set()
    while todo:
        function = todo.pop()
        if function in reached:
            continue
        reached.add(function)
        nodes.append(functions[function])
        for node in ast.walk(functions[function]):
            if isinstance(node, ast.Name) and node.id in functions and not node.id.startswith("_cmd_"):
                if node.id in types and not (types[node.id] & set(argv)):
                    continue  # an option's type=, for an option this command does not give
                todo.append(node.id)
    return imports(nodes, "ld") | {"ld"}


def notebook_imports(notebook: str | Path) -> set[str]:
    """The ld modules a notebook's code cells import (IPython magics and shell lines dropped)."""
    nb = json.loads((REPO / notebook).read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
             for c in nb["cells"] if c["cell_type"] == "code"]
    code = "\n".join(line for cell in cells for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))
    return imports([ast.parse(code)])


@cache
def custom_imports() -> frozenset[str]:
    """The modules the configs' ``custom_imports`` name (the shared parts; an exported run's config.py
    carries its row's)."""
    modules = set()
    for config in sorted((REPO / CONFIG_PARTS).rglob("*.py")):
        for node in ast.walk(tree(config)):
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "custom_imports"
                                                     for t in node.targets)):
                value = node.value
                if isinstance(value, ast.Call):  # dict(imports=[...], ...)
                    names = next(k.value for k in value.keywords if k.arg == "imports")
                else:  # {'imports': [...], ...}
                    names = next(v for k, v in zip(value.keys, value.values) if ast.literal_eval(k) == "imports")
                modules |= set(ast.literal_eval(names))
    return frozenset(modules)


def report_notebooks() -> list[str]:
    """The notebooks ``ld report`` executes (its pages that a stage of their own does not render)."""
    from ld.results.report import REPORTS

    results = Path("results/smoke")  # the report stage's own output folder: its pages with a stage are rendered
    return [f"notebooks/{report.name}.ipynb" for report in REPORTS if report.executed(results, results)]


def command_files(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """The ld/ files (repo-relative, sorted) that ``ld ARGV`` runs (``parser``: ``ld.cli.build_parser()``)."""
    name, modules = handler(argv, parser), cli_imports(argv, parser)
    if name in BUILDS_MODELS:
        modules |= set(custom_imports())
    if name == "_cmd_notebook":
        modules |= notebook_imports(parser.parse_args(argv).src)
    if name == "_cmd_report":
        modules |= {m for nb in report_notebooks() for m in notebook_imports(nb)}
    files = closure(modules) | {REPO / "ld/cli.py"}
    return sorted(str(f.relative_to(REPO)) for f in files)


def fingerprint(argv: list[str], parser: argparse.ArgumentParser) -> dict:
    """``{"command": "ld ARGV", "files": {file: sha256}}``: what dvc.yaml's ``code`` stage writes
    (``parser``: ``ld.cli.build_parser()``)."""
    return {"command": " ".join(["ld", *argv]),
            "files": {f: hashlib.sha256((REPO / f).read_bytes()).hexdigest() for f in command_files(argv, parser)}}
