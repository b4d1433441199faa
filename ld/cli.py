"""The ``ld`` command: a thin layer over library functions (each one tested directly)."""
from __future__ import annotations

import argparse
import json
import sys

from ld.errors import LDError


def _cmd_data_synth(args) -> None:
    from ld.data.synth import SynthSpec, write_dataset
    from ld.profiles import get_profile, load_params

    spec = SynthSpec(**get_profile(load_params(args.params), args.profile)["data"])
    summary = write_dataset(args.out, spec)
    print(json.dumps(summary["splits"]))


def _cmd_train(args) -> None:
    from ld.engine.train import build_train_config, train
    from ld.profiles import load_params

    cfg = build_train_config(args.config, load_params(args.params), profile=args.profile,
                             data_root=args.data, teacher_dir=args.teacher, work_root=args.work_root,
                             live_dir=args.live, launcher=args.launcher)
    print(f"ld train: {args.config} -> {args.out}  (work dir {cfg.work_dir}; lr rule {dict(cfg.lr_rule)})",
          flush=True)
    train(cfg, args.out)


def _cmd_eval(args) -> None:
    from ld.engine.evaluate import evaluate_checkpoint

    metrics = evaluate_checkpoint(args.config, args.checkpoint, args.out)
    print(json.dumps(metrics))


def _cmd_notebook(args) -> None:
    import yaml

    from ld.notebooks import execute_notebook
    from ld.profiles import load_params

    parameters = {"profile": args.profile or load_params(args.params)["profile"]}
    parameters.update({key: yaml.safe_load(value) for key, value in args.param})
    print(execute_notebook(args.src, args.dst, parameters, timeout=args.timeout))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ld", description="Localization Distillation workspace")
    parser.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    parser.add_argument("--profile", default=None, help="profile name (default: params.yaml's profile)")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write the embedded dataset (size from the profile)")
    synth.add_argument("out", help="dataset root to write")
    synth.set_defaults(func=_cmd_data_synth)

    tr = sub.add_parser("train", help="train one row config under the profile")
    tr.add_argument("config", help="a config under pipelines/configs/")
    tr.add_argument("--out", required=True, help="folder for the exported model.pth + config.py")
    tr.add_argument("--teacher", default=None, help="exported teacher folder (distillation configs)")
    tr.add_argument("--data", default=None, help="dataset root (default: data/<profile>)")
    tr.add_argument("--live", default=None, help="DVCLive folder for the training curves")
    tr.add_argument("--work-root", default="work", help="root of run folders (checkpoints to resume)")
    tr.add_argument("--launcher", default="none", choices=["none", "pytorch", "slurm"],
                    help="'pytorch' under torchrun for several GPUs")
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser("eval", help="COCO metrics of an exported model (the student alone)")
    ev.add_argument("config")
    ev.add_argument("checkpoint")
    ev.add_argument("--out", required=True, help="metrics JSON to write")
    ev.set_defaults(func=_cmd_eval)

    nb = sub.add_parser("notebook", help="execute a notebook with papermill (project kernel, repo root)")
    nb.add_argument("src")
    nb.add_argument("dst")
    nb.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a parameter (VALUE read as YAML); 'profile' defaults to the profile")
    nb.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    nb.set_defaults(func=_cmd_notebook)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except LDError as err:
        print(f"ld {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
