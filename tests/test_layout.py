"""The README's layout section names every module of the library, in the folder it lives in."""
import ast
import re

import pytest

from tests.conftest import REPO

SECTION = (REPO / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
ROWS = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(ld/[a-z_/]*)` \| (.*) \|$", SECTION, re.M)}


def test_the_layout_table_has_a_row_per_package():
    packages = {f"{p.relative_to(REPO)}/" for p in (REPO / "ld").iterdir() if (p / "__init__.py").is_file()}
    assert set(ROWS) == packages | {"ld/"}


@pytest.mark.parametrize("folder", sorted(ROWS))
def test_each_module_is_named_in_its_folders_row(folder):
    modules = {p.stem for p in (REPO / folder).glob("*.py") if p.stem != "__init__"}
    named = set(re.findall(r"`([a-z0-9_]+)`", ROWS[folder]))
    assert modules <= named, f"README layout, {folder}: not named: {sorted(modules - named)}"



def _ld_imports(*files) -> set[str]:
    """The ``ld`` modules that ``files`` import (lazy imports too)."""
    found = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ld":
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.split(".")[0] == "ld"}
    return found


def test_engine_and_results_do_not_import_each_other():
    """What trains and what reads share names through ld.layout and ld.frames, not through each other."""
    assert not any(m.startswith("ld.results") for m in _ld_imports(*(REPO / "ld" / "engine").glob("*.py")))
    assert not any(m.startswith("ld.engine") for m in _ld_imports(*(REPO / "ld" / "results").glob("*.py")))


@pytest.mark.parametrize("module", ["layout", "frames", "io", "errors"])
def test_the_ground_floor_imports_nothing_of_the_project_above_it(module):
    assert _ld_imports(REPO / "ld" / f"{module}.py") <= {"ld.errors", "ld.io"}


def test_the_test_tree_mirrors_the_library():
    """tests/<package>/ for each package of ld/, tests/e2e/ for the end-to-end runs (README: Layout)."""
    folders = {p.name for p in (REPO / "tests").iterdir() if (p / "__init__.py").is_file()}
    packages = {p.name for p in (REPO / "ld").iterdir() if (p / "__init__.py").is_file()}
    assert folders == packages | {"e2e"}
