"""The README's layout section names every module of the library, in the folder it lives in."""
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
