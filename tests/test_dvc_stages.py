"""dvc.yaml as a graph: a stage that reads the dataset depends on it, so `dvc repro <target>` builds it first."""
import re

import pytest
import yaml

from tests.conftest import REPO

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
# `ld` subcommands that read data/<profile>: training, evaluation, the seed study, the ambiguity analysis
READS_DATA = re.compile(r"\bld --profile \$\{profile\} (train|eval|seeds|report)\b")


def _body(stage):
    return stage.get("do", stage)


@pytest.mark.parametrize("name", [n for n, s in STAGES.items() if READS_DATA.search(_body(s)["cmd"])])
def test_a_stage_that_reads_the_dataset_depends_on_it(name):
    assert "data/${profile}" in _body(STAGES[name])["deps"], name


def test_the_rule_covers_every_evaluation_stage():
    assert {"eval", "eval_distill", "eval_teacher", "report"} <= {
        n for n, s in STAGES.items() if READS_DATA.search(_body(s)["cmd"])}
