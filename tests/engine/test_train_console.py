"""A real tiny training through ``ld.engine.train.train``: the console shows a header, mmengine's line per log
interval and where the model went, the run's log file keeps everything, and the DVCLive curves (mmengine's
LoggerHook -> ld.engine.live.DVCLiveCurves) have a point per log line, the last iteration included; a
resumed run continues them and ends with the curves of an uninterrupted run."""
from __future__ import annotations

import copy
import shutil

import pytest

from ld.data.synth import SynthSpec, write_dataset

ITERATIONS, INTERVAL = 8, 3  # 2 epochs of 16 images / 4 a batch; a line at 3 of each epoch and at its end
STEPS = ["3", "4", "7", "8"]
TERMS = {"loss", "loss_cls", "loss_bbox", "loss_dfl", "lr"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from ld.profiles import load_params
    from tests.conftest import REPO

    root = tmp_path_factory.mktemp("console")
    write_dataset(root / "data", SynthSpec(num_train=16, num_val=2, image_size=64, seed=3), show_progress=False)
    params = load_params(REPO / "params.yaml")
    smoke = copy.deepcopy(params["profiles"]["smoke"])
    params["profiles"]["tiny"] = {**smoke, "data": {**smoke["data"], "image_size": 64}, "batch_size": 4,
                                  "warmup_iters": 2, "log_interval": INTERVAL,
                                  "schedules": {"1x": {"epochs": 2, "steps": [1]}}}
    return root, params


def _cfg(tiny, tmp_path):
    from ld.engine.train import build_train_config

    root, params = tiny
    return build_train_config("pipelines/configs/gfl_r18_1x.py", params, profile="tiny", data_root=root / "data",
                              work_root=tmp_path / "work", live_dir=tmp_path / "live")


def _curves(live) -> dict[str, str]:
    return {str(p.relative_to(live)): p.read_text() for p in sorted(live.rglob("*")) if p.is_file()}


def test_the_console_shows_a_line_per_log_interval_and_where_the_model_went(tiny, tmp_path, repo_root, capfd):
    from ld.engine.train import train

    cfg = _cfg(tiny, tmp_path)
    capfd.readouterr()
    train(cfg, tmp_path / "model")
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert len(lines) <= ITERATIONS // INTERVAL + 10, out
    assert [line.split("Epoch(train)")[1].split("]")[1] for line in lines if "Epoch(train)" in line] == \
        ["[3/4", "[4/4", "[3/4", "[4/4"]
    assert all("eta: " in line and "loss_dfl: " in line for line in lines if "Epoch(train)" in line)
    model = tmp_path / "model"
    assert lines[-1] == f"model written to {model / 'model.pth'} (config {model / 'config.py'})"
    log = next((tmp_path / "work").rglob("*.log"))
    assert lines[0].startswith(f"ld train: gfl_r18_1x -> {model}, starts afresh (lr rule ")
    assert lines[1] == f"ld train: work dir {log.parents[1]}, log {log} (environment, config, every message)"
    assert "System environment" not in out and "Config:" not in out and "loading annotations" not in out
    assert "Warning" not in err, err
    text = log.read_text()  # everything is in the run's log file: environment, config, hooks, prints, lines
    for kept in ("System environment:", "Config:", "custom_hooks", "before_train:", "loading annotations into memory",
                 "Saving checkpoint at 2 epochs", "Epoch(train) [2][4/4]"):
        assert kept in text, kept
    # the curves: a point per log line (the last iteration's included), named as the committed plots
    curves = _curves(tmp_path / "live")
    assert set(curves) == {"metrics.json"} | {f"plots/metrics/train/{term}.tsv" for term in TERMS}
    for term in TERMS:
        rows = [row.split("\t") for row in curves[f"plots/metrics/train/{term}.tsv"].splitlines()]
        assert rows[0] == ["step", term] and [row[0] for row in rows[1:]] == STEPS
    assert '"step": 8' in curves["metrics.json"]
    # the exported config has no curves (mmdet's tools/test.py would open, and clear, the folder)
    assert "DVCLiveCurves" not in (tmp_path / "model" / "config.py").read_text()


def test_a_resumed_run_ends_with_the_curves_of_an_uninterrupted_one_and_a_fresh_one_clears_them(
        tiny, tmp_path, repo_root):
    from ld.engine.train import train

    cfg = _cfg(tiny, tmp_path)
    train(cfg, None)
    whole = _curves(tmp_path / "live")
    work = tmp_path / "work"
    # as if killed in epoch 2 after its log line at step 7: back to the epoch-1 checkpoint
    (next(work.rglob("epoch_2.pth"))).unlink()
    pointer = next(work.rglob("last_checkpoint"))
    pointer.write_text(str(pointer.parent / "epoch_1.pth"))
    tsv = tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv"
    tsv.write_text(whole["plots/metrics/train/loss.tsv"].rsplit("\n", 2)[0] + "\n")  # step 8 never logged
    resumed_cfg = _cfg(tiny, tmp_path)
    assert [b.resume for b in resumed_cfg.visualizer.vis_backends if b.type == "DVCLiveCurves"] == [True]
    train(resumed_cfg, None)
    assert _curves(tmp_path / "live") == whole
    shutil.copy(tsv, tsv.with_name("loss_old.tsv"))  # a curve no longer logged
    train(_cfg(tiny, tmp_path), None, fresh=True)
    assert _curves(tmp_path / "live") == whole  # the same run again, from scratch, without the old curve
