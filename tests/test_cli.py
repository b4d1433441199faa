"""The `ld` command's own layer: fast help, flags parsed as mmdet's tools parse them."""
import subprocess
import sys

from ld.cli import NMS_TYPES, build_parser


def test_the_nms_choices_are_the_ops_own():
    from ld.ops.voting_cluster_diou_nms import NMS_TYPES as OPS_NMS_TYPES

    assert NMS_TYPES == OPS_NMS_TYPES


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
