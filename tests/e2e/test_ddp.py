"""The multi-GPU path (torchrun -> mmengine's pytorch launcher -> DDP), exercised with 2 CPU processes on
the gloo backend: a baseline and an LD + VLR student train, the LR rule sees 2 processes, rank 0 exports."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml

# pytest-timeout: torchrun trainings of two runs (each given up to 600 s)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def _args(params_file, *args):
    return ["--params", str(params_file), "--profile", "ddp", *args]


def test_two_process_gloo_training_of_a_baseline_and_an_ld_student(repo_root, tmp_path):
    from mmengine.config import Config

    from ld.engine.train import export_initial
    from ld.profiles import load_params

    params = load_params(repo_root / "params.yaml")
    profile = copy.deepcopy(params["profiles"]["smoke"])
    profile.update(data={"num_train": 8, "num_val": 4, "image_size": 64, "max_objects": 3, "seed": 1},
                   schedules={"1x": {"epochs": 1, "steps": [1]}, "2x": {"epochs": 1, "steps": [1]}}, batch_size=2,
                   warmup_iters=1, workers=0, base_lr=0.01)
    params["profiles"]["ddp"] = profile
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "ld.cli", *_args(params_file, "data", "prepare", str(data))], check=True,
                   cwd=repo_root)
    teacher = export_initial("pipelines/configs/gfl_r50_2x.py", params, tmp_path / "gfl_r50_2x", profile="ddp")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"]
    for run, extra in (("gfl_r18_1x", []), ("ld_vlr_r18_gfl_r50_1x", ["--teacher", str(teacher)])):
        out = tmp_path / "models" / run
        live = tmp_path / "live" / run
        args = _args(params_file, "train", f"pipelines/configs/{run}.py", "--data", str(data), "--out", str(out),
                     "--work-root", str(tmp_path / "work"), "--launcher", "pytorch", "--live", str(live), *extra)
        proc = subprocess.run([*torchrun, "-m", "ld.cli", *args], cwd=repo_root, capture_output=True, text=True,
                              timeout=600)
        console = proc.stdout + proc.stderr
        assert proc.returncode == 0, console[-3000:]
        cfg = Config.fromfile(str(out / "config.py"))
        assert cfg.lr_rule.num_gpus == 2 and cfg.lr_rule.lr == pytest.approx(2 * 2 / 16 * 0.01)
        # rank 0 alone prints: the header, the line of each log interval, where the model went
        assert console.count("ld train: work dir ") == console.count("model written to ") == 1, console
        assert console.count("Epoch(train) [1][2/2]") == 1  # 8 images / (2 per process x 2 processes)
        log = next((tmp_path / "work" / "ddp" / run).rglob("*.log")).read_text()  # rank 0's: everything
        assert "Distributed training: True" in log and "Epoch(train) [1][2/2]" in log
        assert (out / "model.pth").is_file()
        if run.startswith("ld"):
            assert "loss_ld_vlr" in console
        # rank 0 alone writes the curves: one point per logged step
        assert (live / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()[1:] == \
            [f"2\t{json.loads((live / 'metrics.json').read_text())['train']['loss']}"]
