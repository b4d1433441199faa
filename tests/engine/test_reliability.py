"""No stale models, no deleted folders, no silent partial loads: what a run trains on is part of its
identity, an export writes only its own two files, evaluation loads exactly, damaged checkpoints and
unwritable outputs are named before work is lost, and two trainings never share a folder."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch

from ld.checkpoint import load_checkpoint, save_checkpoint, save_weights
from ld.errors import BadFileError, ConfigError, LDError
from tests.conftest import REPO


def _cfg(params, data, tmp_path, config="gfl_r18_1x"):
    from ld.engine.train import build_train_config

    return build_train_config(f"{REPO}/pipelines/configs/{config}.py", params, profile="smoke", data_root=data,
                              work_root=tmp_path / "work")


# --- 1. the data is part of a run's identity ---------------------------------------------------------------

def test_other_data_gives_another_run_folder(params, dataset, tmp_path):
    from ld.data.synth import SynthSpec, write_dataset

    first = _cfg(params, dataset, tmp_path)
    assert _cfg(params, dataset, tmp_path).work_dir == first.work_dir  # same config, same data: resumable
    write_dataset(tmp_path / "other", SynthSpec(num_train=4, num_val=2, image_size=64, seed=2), show_progress=False)
    assert _cfg(params, tmp_path / "other", tmp_path).work_dir != first.work_dir
    # annotations fixed in place (same images): another run too
    ann = dataset / "annotations" / "instances_train.json"
    ann.write_text(ann.read_text().replace('"iscrowd": 0', '"iscrowd": 0 '))
    fixed = _cfg(params, dataset, tmp_path)
    assert fixed.work_dir != first.work_dir and fixed.data_identity["train"] != first.data_identity["train"]
    assert fixed.data_identity["val"] == first.data_identity["val"]
    # an image added to the folder: another run
    (dataset / "JPEGImages" / "extra.jpg").write_bytes(b"x")
    assert _cfg(params, dataset, tmp_path).work_dir != fixed.work_dir


def test_a_run_folder_of_another_run_is_never_resumed(params, dataset, tmp_path):
    from ld.engine.train import _check_identity

    cfg = _cfg(params, dataset, tmp_path)
    os.makedirs(cfg.work_dir)
    _check_identity(cfg)  # the first start records the identity
    _check_identity(cfg)
    other = copy.deepcopy(cfg)
    other.run_digest = "0" * 64
    with pytest.raises(BadFileError, match="checkpoints of another run"):
        _check_identity(other)
    (tmp_path / "unknown").mkdir()
    (tmp_path / "unknown" / "last_checkpoint").write_text("epoch_1.pth")
    other.work_dir = str(tmp_path / "unknown")
    with pytest.raises(BadFileError, match="unknown origin"):
        _check_identity(other)


# --- 2. an export writes only its own files ----------------------------------------------------------------

def _work_dir_with_checkpoint(tmp_path):
    work = tmp_path / "run"
    work.mkdir()
    torch.save({"state_dict": {"w": torch.ones(2)}, "meta": {"epoch": 3, "time": "volatile"}}, work / "epoch_3.pth")
    (work / "last_checkpoint").write_text(str(work / "epoch_3.pth"))
    return work


def test_export_refuses_a_folder_of_other_things_and_deletes_nothing(tmp_path):
    from mmengine.config import Config

    from ld.engine.train import export_model

    work, models = _work_dir_with_checkpoint(tmp_path), tmp_path / "models"
    (models / "gfl_r50_2x").mkdir(parents=True)
    (models / "gfl_r50_2x" / "model.pth").write_bytes(b"another model")
    (models / ".gitignore").write_text("/gfl_r50_2x\n")
    with pytest.raises(ConfigError, match=r"holds files that are not a run's export \(\.gitignore, gfl_r50_2x\)"):
        export_model(work, Config({"a": 1}), models)  # the run name forgotten: --out models/smoke
    assert (models / "gfl_r50_2x" / "model.pth").read_bytes() == b"another model"
    assert (models / ".gitignore").is_file()


def test_export_replaces_an_earlier_export_file_by_file(tmp_path):
    from mmengine.config import Config

    from ld.engine.train import export_model

    work, out = _work_dir_with_checkpoint(tmp_path), tmp_path / "out"
    out.mkdir()
    (out / "model.pth").write_bytes(b"old")
    (out / ".model.pth.tmp").write_bytes(b"left by a killed export")
    export_model(work, Config({"a": 1}), out)
    assert sorted(p.name for p in out.iterdir()) == ["config.py", "model.pth"]
    saved = load_checkpoint(out / "model.pth")
    assert torch.equal(saved["state_dict"]["w"], torch.ones(2)) and saved["meta"] == {"epoch": 3}


def test_an_unwritable_out_is_refused_before_training(tmp_path):
    from ld.engine.train import EXPORTED
    from ld.io import check_export_dir

    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        check_export_dir(tmp_path / "file", EXPORTED)
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only folders")
    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(ConfigError, match="not writable"):
        check_export_dir(tmp_path / "ro" / "run", EXPORTED)


def test_an_unwritable_out_stops_ld_train_before_it_trains(params, dataset, tmp_path, capsys, monkeypatch):
    """Simulated with a folder that cannot be created (a file on its path): exit 2, nothing trained."""
    from mmengine.runner import Runner

    from ld.cli import main

    monkeypatch.setattr(Runner, "from_cfg", staticmethod(lambda cfg: pytest.fail("training started")))
    (tmp_path / "blocker").write_text("")
    code = main(["--params", str(REPO / "params.yaml"), "train", f"{REPO}/pipelines/configs/gfl_r18_1x.py",
                 "--data", str(dataset), "--out", str(tmp_path / "blocker" / "run"), "--work-root",
                 str(tmp_path / "work")])
    assert code == 2 and "not writable" in capsys.readouterr().err


def _full_disk(obj, f, *args, **kwargs):
    """``torch.save`` on a disk that fills up part way."""
    with open(f, "wb") as out:
        out.write(b"partial")
    raise OSError(28, "No space left on device")


def test_a_full_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "save", _full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_weights(tmp_path / "model.pth", {"w": torch.ones(1)}, {})
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_a_checkpoint_is_rewritten_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "epoch_2.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "optimizer": {"state": {}}}, path)
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", _full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, {"state_dict": {"w": torch.ones(1)}})
    assert list(tmp_path.iterdir()) == [path] and path.read_bytes() == before


def test_a_finished_run_folder_keeps_the_last_checkpoint_without_its_optimizer(tmp_path):
    from ld.engine.train import _keep_what_a_reexport_needs

    hub = {"log_scalars": {}, "runtime_info": {"epoch": 2}}
    for epoch in (1, 2):
        torch.save({"meta": {"epoch": epoch}, "state_dict": {"w": torch.full((3,), float(epoch))},
                    "message_hub": hub, "param_schedulers": [{"last_step": epoch}],
                    "optimizer": {"state": {0: {"momentum_buffer": torch.ones(3)}}, "param_groups": []}},
                   tmp_path / f"epoch_{epoch}.pth")
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_2.pth"))
    _keep_what_a_reexport_needs(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("epoch_*.pth")) == ["epoch_2.pth"]
    kept = load_checkpoint(tmp_path / "epoch_2.pth")
    assert sorted(kept) == ["message_hub", "meta", "param_schedulers", "state_dict"]
    assert torch.equal(kept["state_dict"]["w"], torch.full((3,), 2.0)) and kept["param_schedulers"][0]["last_step"] == 2
    mtime = (tmp_path / "epoch_2.pth").stat().st_mtime_ns
    _keep_what_a_reexport_needs(tmp_path)  # a second finish (a run started again) rewrites nothing
    assert (tmp_path / "epoch_2.pth").stat().st_mtime_ns == mtime


# --- 3. evaluation loads exactly ---------------------------------------------------------------------------

def test_ld_eval_refuses_weights_that_do_not_fit_the_config(tiny_run, tmp_path, capsys):
    from mmengine.config import Config

    from ld.cli import main

    cfg = Config.fromfile(str(tiny_run / "model" / "config.py"))
    cfg.model.backbone.depth = 34  # another architecture than the weights'
    cfg.dump(str(tmp_path / "config.py"))
    code = main(["eval", str(tmp_path / "config.py"), str(tiny_run / "model" / "model.pth"), "--out",
                 str(tmp_path / "metrics.json")])
    err = capsys.readouterr().err
    assert code == 2 and "does not fit its config" in err and "missing keys ['backbone.layer1.2" in err
    assert not (tmp_path / "metrics.json").exists()


# --- damaged checkpoints -----------------------------------------------------------------------------------

@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(b""), "is empty"),
    (lambda p: p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\n"),
     "cannot be read as a PyTorch checkpoint"),
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "cannot be read as a PyTorch checkpoint"),
    (lambda p: torch.save([1, 2], p), "holds a list, not a checkpoint"),
])
def test_a_damaged_checkpoint_is_named(tmp_path, damage, message):
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
    damage(path)
    with pytest.raises(BadFileError, match=message) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_a_damaged_last_checkpoint_says_how_to_go_on(tmp_path):
    from ld.engine.train import _check_last_checkpoint

    work = _work_dir_with_checkpoint(tmp_path)
    torch.save({"state_dict": {"w": torch.zeros(2)}}, work / "epoch_2.pth")
    (work / "epoch_3.pth").write_bytes((work / "epoch_3.pth").read_bytes()[:100])
    with pytest.raises(BadFileError) as err:
        _check_last_checkpoint(work)
    assert f"echo {work / 'epoch_2.pth'} > {work / 'last_checkpoint'}" in str(err.value)
    assert "--no-resume" in str(err.value) and "epoch_3.pth" in str(err.value)


# --- two trainings, one folder ----------------------------------------------------------------------------

def test_a_second_training_of_the_same_folder_is_refused_naming_the_holder(tmp_path):
    from ld.engine.train import exclusive

    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from ld.engine.train import exclusive
        with exclusive([{str(tmp_path / 'out')!r}], {str(tmp_path / 'locks')!r}):
            print('locked', flush=True)
            time.sleep(60)
        """)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LDError, match=rf"in use by another `ld train` \(pid {holder.pid} on "):
            with exclusive([tmp_path / "out"], tmp_path / "locks"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive([tmp_path / "out"], tmp_path / "locks"):  # released when its holder died
        pass


def test_a_full_disk_during_training_leaves_no_partial_checkpoint_and_says_what_to_do(tmp_path, monkeypatch,
                                                                                       params, dataset):
    """The checkpoint written when the disk filled up is removed; the last complete one stays for the resume."""
    from mmengine.runner import Runner

    from ld.engine.train import train

    cfg = _cfg(params, dataset, tmp_path)
    work = _work_dir_with_checkpoint(tmp_path)  # epoch_3 complete, named by last_checkpoint
    cfg.work_dir = str(work)
    (work / "identity.json").write_text(json.dumps({"run_digest": cfg.run_digest}))

    class FillsTheDisk:
        rank = 0
        logger = SimpleNamespace(log_file="run.log")

        def train(self):
            (work / "epoch_4.pth").write_bytes(b"partial")
            raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0: file write failed")

    monkeypatch.setattr(Runner, "from_cfg", staticmethod(lambda cfg: FillsTheDisk()))
    (work / "epoch_5.pth").write_bytes(b"left by a run killed while saving")
    with pytest.raises(LDError, match="file write failed while writing under .*Free space .* resumes from the last"):
        train(cfg, tmp_path / "out", fresh=False)
    assert sorted(p.name for p in work.glob("epoch_*.pth")) == ["epoch_3.pth"]
