"""The `ld` command's own layer: fast help, flags parsed as mmdet's tools parse them."""
import shutil
import subprocess
import sys

import pytest

from ld.cli import build_parser
from tests.conftest import REPO


def test_help_imports_no_heavy_library():
    code = ("import sys, contextlib, io\nfrom ld.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])\n"
            "print(sorted(m for m in ('torch', 'mmengine', 'mmdet', 'mmcv', 'numpy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cfg_options_are_parsed_as_mmdets_dict_action():
    args = build_parser().parse_args(["eval", "c.py", "m.pth", "--out", "m.json", "--cfg-options",
                                      "model.test_cfg.score_thr=0.05", "test_dataloader.batch_size=2",
                                      "model.test_cfg.nms.iou_threshold=0.5"])
    assert args.cfg_options == {"model.test_cfg.score_thr": 0.05, "test_dataloader.batch_size": 2,
                                "model.test_cfg.nms.iou_threshold": 0.5}
    args = build_parser().parse_args(["train", "c.py", "--out", "o", "--cfg-options",
                                      "optim_wrapper.optimizer.lr=0.001", "train_cfg.max_epochs=[1,2]"])
    assert args.cfg_options == {"optim_wrapper.optimizer.lr": 0.001, "train_cfg.max_epochs": [1, 2]}
    assert build_parser().parse_args(["train", "c.py", "--out", "o"]).cfg_options is None


@pytest.mark.parametrize("argv", [
    ["eval", "models/smoke/gfl_r50_2x/config.py", "models/smoke/gfl_r50_2x/model.pth", "--out", "m.json"],
    ["bench", "fps", "models/smoke/gfl_r50_2x/config.py", "models/smoke/gfl_r50_2x/model.pth"],
    ["show", "models/smoke/gfl_r50_2x/config.py", "models/smoke/gfl_r50_2x/model.pth", "image.jpg"],
    ["train", str(REPO / "pipelines/configs/ld_r18_gfl_r50_1x.py"), "--teacher", "models/smoke/gfl_r50_2x",
     "--out", "out", "--work-root", "work"],
])
def test_a_missing_model_is_one_line_naming_its_stage(argv, tmp_path, monkeypatch, capsys):
    from PIL import Image

    from ld.cli import main

    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    Image.new("RGB", (32, 24)).save(tmp_path / "image.jpg")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "models/smoke/gfl_r50_2x/config.py not found: get it with `dvc pull models/smoke/gfl_r50_2x`" in err
    assert f"{'teacher' if argv[0] == 'train' else 'config'} models/smoke/gfl_r50_2x/config.py not found" in err
    assert "`dvc repro train@gfl_r50_2x`" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.jpg", "params.yaml"]  # nothing written


def test_a_missing_model_says_whether_the_remote_holds_it(tmp_path, monkeypatch):
    """An empty (or another machine's) remote cannot give the version dvc.lock names: the hint is to make it or
    to point the remote elsewhere, not a `dvc pull` that fails; a remote that holds it gets the pull hint."""
    from ld.checkpoint import missing_model, remote_holds

    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], check=True)
    (tmp_path / ".dvc" / "config").write_text("[core]\n    remote = storage\n['remote \"storage\"']\n"
                                              "    url = ../store\n")
    md5 = "0123456789abcdef0123456789abcdef.dir"
    (tmp_path / "dvc.lock").write_text(f"schema: '2.0'\nstages:\n  train@gfl_r50_2x:\n    cmd: x\n    outs:\n"
                                       f"    - path: models/smoke/gfl_r50_2x\n      hash: md5\n      md5: {md5}\n")
    assert remote_holds("models/smoke/gfl_r50_2x") == (False, str(tmp_path / "store"))
    err = str(missing_model("models/smoke/gfl_r50_2x/config.py"))
    assert "does not hold the version dvc.lock names" in err and "`dvc repro train@gfl_r50_2x`" in err, err
    assert "dvc pull" not in err and "\n" not in err
    held = tmp_path / "store" / "files" / "md5" / md5[:2] / md5[2:]
    held.parent.mkdir(parents=True)
    held.write_text("[]")
    assert remote_holds("models/smoke/gfl_r50_2x") == (True, str(tmp_path / "store"))
    assert "get it with `dvc pull models/smoke/gfl_r50_2x`" in str(missing_model("models/smoke/gfl_r50_2x/config.py"))
    assert remote_holds("models/smoke/gfl_r18_1x") is None  # not in dvc.lock: nothing to tell
