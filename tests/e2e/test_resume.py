"""A training run killed with SIGKILL mid-epoch resumes from its last checkpoint and ends with the same
bytes as an uninterrupted run (CPU): same weights, iterations, curve length and loss."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ld.checkpoint import load_checkpoint
from ld.data.synth import SynthSpec, write_dataset
from tests.conftest import REPO

# pytest-timeout: three trainings in subprocesses (each given up to 600 s)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    write_dataset(root / "data", SynthSpec(num_train=64, num_val=8, image_size=64), show_progress=False)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    smoke = params["profiles"]["smoke"]
    # a dataloader worker: its augmentation draws from its own generators (the harder case to restore)
    params["profiles"]["tiny"] = {**smoke, "data": {**smoke["data"], "image_size": 64}, "workers": 1,
                                  "schedules": {"1x": {"epochs": 4, "steps": [2, 3]}}, "batch_size": 4,
                                  "warmup_iters": 2}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def _train(root: Path, name: str) -> subprocess.Popen:
    cmd = [str(Path(sys.executable).parent / "ld"), "--params", str(root / "params.yaml"), "--profile", "tiny",
           "train", "pipelines/configs/gfl_r18_1x.py", "--data", str(root / "data"), "--out", str(root / name),
           "--live", str(root / f"live_{name}"), "--work-root", str(root / f"work_{name}")]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return out


def _summary(root: Path, name: str) -> dict:
    import torch

    import ld.models  # noqa: F401  (registers the modules)

    meta = torch.load(root / name / "model.pth")["meta"]
    live = json.loads((root / f"live_{name}" / "metrics.json").read_text())
    return {"epoch": meta["epoch"], "iter": meta["iter"], "step": live["step"], "loss": live["train"]["loss"]}


def _curves(root: Path, name: str) -> dict[str, str]:
    live = root / f"live_{name}"
    return {str(p.relative_to(live)): p.read_text() for p in sorted((live / "plots").rglob("*.tsv"))}


def test_killed_run_resumes_and_ends_like_an_uninterrupted_one(setup):
    _finish(_train(setup, "whole"))
    proc = _train(setup, "killed")
    deadline = time.time() + 300
    # mmengine writes last_checkpoint once a checkpoint is complete (the file itself appears as the write
    # starts, and a busy machine may take more than a second to finish it: a kill then leaves no checkpoint)
    while not any(p.read_text().strip().endswith("epoch_1.pth")
                  for p in (setup / "work_killed").glob("*/*/*/last_checkpoint")):
        assert time.time() < deadline and proc.poll() is None, "no complete epoch-1 checkpoint appeared"
        time.sleep(0.1)
    time.sleep(0.5)  # into epoch 2 (16 iterations an epoch)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (setup / "killed" / "model.pth").exists()
    [pointer] = (setup / "work_killed").glob("*/*/*/last_checkpoint")
    last = Path(pointer.read_text().strip())  # epoch 1, unless the machine stalled past epoch 2's end
    out = _finish(_train(setup, "killed"))
    assert f"resumes from {last} (lr rule" in out, out[-2000:]
    logs = [log.read_text() for log in (setup / "work_killed").rglob("*.log")]  # the killed start's and the resumed's
    assert any(f"resumed epoch: {last.stem.removeprefix('epoch_')}" in log for log in logs)  # mmengine's line
    whole, resumed = _summary(setup, "whole"), _summary(setup, "killed")
    assert resumed["epoch"] == whole["epoch"] == 4 and resumed["iter"] == whole["iter"] == 64
    assert resumed["step"] == whole["step"]  # the DVCLive curve went on where it stopped
    assert _curves(setup, "killed") == _curves(setup, "whole")  # without the points the killed run logged twice
    assert resumed["loss"] == whole["loss"]
    assert (setup / "killed" / "model.pth").read_bytes() == (setup / "whole" / "model.pth").read_bytes()


def test_a_finished_run_keeps_its_last_checkpoint_only_and_a_second_start_only_exports_again(setup):
    """mmengine keeps two checkpoints while training; once exported, the earlier one is deleted and the last
    loses its optimizer state. It is enough for the same run started again: that resumes at the end and
    writes the same model."""
    if not (setup / "whole" / "model.pth").is_file():
        _finish(_train(setup, "whole"))
    checkpoints = sorted((setup / "work_whole").glob("*/*/*/epoch_*.pth"))
    assert [p.name for p in checkpoints] == ["epoch_4.pth"], checkpoints
    pointer = checkpoints[0].parent / "last_checkpoint"
    assert pointer.read_text().strip() == str(checkpoints[0])
    kept = load_checkpoint(checkpoints[0])
    assert "optimizer" not in kept and {"state_dict", "meta", "message_hub", "param_schedulers"} <= kept.keys()
    assert not list(checkpoints[0].parent.glob(".*.tmp"))
    before = (setup / "whole" / "model.pth").read_bytes()
    (setup / "whole" / "model.pth").unlink()
    out = _finish(_train(setup, "whole"))
    assert "resumes from " in out and "epoch_4.pth" in out, out[-2000:]
    assert (setup / "whole" / "model.pth").read_bytes() == before
