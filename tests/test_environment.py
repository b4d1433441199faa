"""The pinned versions live in requirements/*.txt; environment.yml must mirror them exactly."""
import re

import yaml

from tests.conftest import REPO


def _pins(path):
    return {line.split("==")[0].lower(): line.split("==")[1] for line in
            (raw.split("#")[0].strip() for raw in (REPO / path).read_text().splitlines()) if line}


def test_every_requirement_is_pinned_exactly():
    for name in ("build.txt", "mmcv.txt", "run.txt"):
        for line in (REPO / "requirements" / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            assert not line or re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][A-Za-z0-9.+]*", line), f"{name}: {line}"


def test_environment_yml_mirrors_requirements():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = {p.split("==")[0].lower(): p.split("==")[1] for p in pip_section}
    assert env_pins == {**_pins("requirements/build.txt"), **_pins("requirements/run.txt")}


def test_constraints_pin_everything_installed_from_requirements():
    constraints = _pins("requirements/constraints.txt")
    for name in ("build.txt", "mmcv.txt", "run.txt"):
        for pkg, version in _pins(f"requirements/{name}").items():
            assert constraints.get(pkg) == version, f"constraints.txt disagrees on {pkg}"


def test_dvc_reads_its_yaml_files_with_the_c_loader():
    """DVC parses dvc.yaml and dvc.lock (168 kB at smoke) with ruamel.yaml's safe loader at every stage it
    checks or runs: its C parser (ruamel.yaml.clib, pinned in run.txt) instead of the pure-Python one."""
    from ruamel.yaml import YAML

    loader = YAML(typ="safe")
    assert loader.Parser.__name__ == "CParser", f"{loader.Parser}: `make install` brings ruamel.yaml.clib"
    assert loader.load("stages: {train: {cmd: ld train}}") == {"stages": {"train": {"cmd": "ld train"}}}
