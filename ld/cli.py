"""The ``ld`` command: a thin layer over library functions (each one tested directly)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ld.errors import ConfigError, LDError
from ld.fork_server import SERVER_ENV as FORK_SERVER_ENV
from ld.fork_server import STAGE_TIMES_ENV
from ld.layout import NMS_TYPES


def _cmd_data_prepare(args) -> None:
    from ld.data.prepare import prepare_dataset
    from ld.profiles import get_profile, load_params

    summary = prepare_dataset(get_profile(load_params(args.params), args.profile), args.out,
                              verify_images=args.verify_images)
    print(json.dumps(summary))


def _cmd_data_check(args) -> None:
    from ld.data.check import check_coco, check_voc
    from ld.errors import BadFileError

    report = (check_coco if args.layout == "coco" else check_voc)(args.root, verify_images=args.verify_images)
    if not report.ok:
        raise BadFileError(report.summary() + "\nFix or remove these records, then check again.")
    print(report.summary())


def _cmd_train(args) -> None:
    from ld.engine.train import build_train_config, train
    from ld.params_check import SEED_MAX
    from ld.profiles import load_params

    if args.seed is not None and not 0 <= args.seed <= SEED_MAX:  # before any work folder is made
        raise ConfigError(f"--seed {args.seed}: give an integer from 0 to {SEED_MAX} (numpy's seeds)")
    params = load_params(args.params)
    if args.seed is not None:
        params["seed"] = args.seed
    cfg = build_train_config(args.config, params, profile=args.profile,
                             data_root=args.data, teacher_dir=args.teacher, work_root=args.work_root,
                             live_dir=args.live, launcher=args.launcher, cfg_options=args.cfg_options)
    train(cfg, args.out, fresh=not args.resume)


def _cmd_seeds(args) -> None:
    from ld.engine.seed_study import run_seed_study
    from ld.layout import seeds_models_dir, seeds_results_dir
    from ld.profiles import load_params

    params = load_params(args.params)
    profile = args.profile or params["profile"]
    written = run_seed_study(params, profile, args.run, out=args.out or seeds_results_dir(profile, args.run),
                             models=args.models or seeds_models_dir(profile, args.run), work_root=args.work_root,
                             only=args.seeds)
    print(f"ld seeds: {args.run}: {len(written)} evaluations written" + ("" if written else
          f" (profile {profile} trains no seed of it here: params.yaml study.seeds / study.seeded)"))


def _cmd_paper_run(args) -> None:
    import subprocess

    import yaml

    from ld.results.paper import runs_for, table_spec

    runs = runs_for(args.tables)
    profile = args.profile or table_spec(args.tables[0])["profile"]
    flow = lambda value: yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()  # noqa: E731
    cmd = ["dvc", "exp", "run", "-S", f"profile={profile}", "-S", f"train={flow(runs['train'])}",
           "-S", "~distill", "-S", f"+distill={flow(runs['distill'])}",  # replaced, not merged (Hydra)
           "-S", f"paper_tables={flow(args.tables)}",
           "paper_table"]  # the table stages and what they need (not the smoke-sized seed study or reports)
    print(" ".join(f"'{c}'" if any(ch in c for ch in " {}[],:") else c for c in cmd), flush=True)
    if not args.dry_run:
        if subprocess.run([sys.executable, "-m", *cmd]).returncode:
            raise LDError(f"dvc exp run failed for the tables {args.tables}")


def _cmd_eval(args) -> None:
    from ld.engine.evaluate import evaluate_checkpoint

    metrics = evaluate_checkpoint(args.config, args.checkpoint, args.out, results=args.results,
                                  results_out=args.results_out, tables_dir=args.tables, nms=args.nms,
                                  cfg_options=args.cfg_options)
    print(json.dumps(metrics))


def _cmd_convert(args) -> None:
    from ld.engine.convert import convert_checkpoint

    sizes = convert_checkpoint(args.src, args.dst, args.config)
    print(f"{args.src}: {sizes['src_bytes'] / 2**20:.1f} MiB -> {args.dst}: {sizes['dst_bytes'] / 2**20:.1f} MiB "
          f"(kept {sizes['kept_keys']} student keys, dropped {sizes['dropped_keys']} teacher keys; "
          "optimizer state dropped)")


def _cmd_teacher_import(args) -> None:
    from ld.engine.teacher_import import import_run
    from ld.layout import run_dir
    from ld.profiles import load_params

    params = load_params(args.params)
    profile = args.profile or params["profile"]
    published = {"AP": args.published_ap} if args.published_ap is not None else None
    out = args.out or run_dir(profile, args.run)
    source = import_run(args.checkpoint, args.run, params, profile, out, sha256=args.sha256, published=published)
    print(f"ld teacher import: {args.checkpoint} ({source['format']}, sha256 {source['sha256'][:12]}..., "
          f"{source['mapped_keys']} tensors) -> {out}")


def _cmd_bench_fps(args) -> None:
    from ld.engine.fps import benchmark_fps
    from ld.io import atomic_write_json

    result = benchmark_fps(args.config, args.checkpoint, num_images=args.images, warmup=args.warmup,
                           batch_size=args.batch_size, nms=args.nms)
    print(json.dumps(result))
    if args.out:
        atomic_write_json(args.out, result)


def _cmd_notebook(args) -> None:
    import yaml

    from ld.profiles import load_params
    from ld.results.notebooks import execute_notebook

    parameters = {"profile": args.profile or load_params(args.params)["profile"]}
    parameters.update({key: yaml.safe_load(value) for key, value in args.param})
    print(execute_notebook(args.src, args.dst, parameters, timeout=args.timeout))


def _cmd_show(args) -> None:
    from ld.results.show import show_image

    out = args.out or f"{Path(args.image).stem}.distributions.png"
    written = show_image(args.config, args.checkpoint, args.image, out, box=args.box, score_thr=args.score_thr,
                         top_k=args.top_k)
    print(f"figure written to {written}")


def _cmd_report(args) -> None:
    import yaml

    from ld.profiles import get_profile, load_params
    from ld.results.report import build_reports

    params = load_params(args.params)
    profile = args.profile or params["profile"]
    settings = get_profile(params, profile)  # an unknown profile is refused before anything is written
    parameters = {key: yaml.safe_load(value) for key, value in args.param}
    print(build_reports(profile, args.out, parameters, timeout=args.timeout,
                        paper_tables=params.get("paper_tables") or [], only=args.only,
                        caveat=settings.get("caveat")))


def _cmd_compare(args) -> int:
    from ld.results.compare import compare_trees, summary

    rows, ap_tol = compare_trees(args.a, args.b, spread_factor=args.spread_factor, ap_tol=args.ap_tol,
                                 curve_rtol=args.curve_rtol)
    print(summary(rows, ap_tol, args.curve_rtol, args.a, args.b))
    return 0 if all(row.ok for row in rows) else 1


def _cmd_diff(args) -> None:
    from ld.results.side_by_side import side_by_side

    print(side_by_side(args.a, args.b, every_run=args.all))


def _cmd_code_deps(args) -> None:
    from ld.code_deps import fingerprint
    from ld.io import atomic_write_json

    if not args.command_argv:
        raise ConfigError("give the command whose code to fingerprint, e.g. `ld code-deps out.json train x.py --out x`")
    document = fingerprint(args.command_argv, build_parser())
    atomic_write_json(args.out, document)
    print(f"{args.out}: {len(document['files'])} files of `{document['command']}`")


def _cmd_stage_times(args) -> int:
    from ld.io import atomic_write_json
    from ld.results.stage_profile import format_profile, profile_document, profile_repro, read_times, stage_rows

    if args.source:
        code, wall, times = 0, None, Path(args.source)
        if not times.is_file():
            raise ConfigError(f"--from {times}: no such file (a file of LD_STAGE_TIMES lines, e.g. --times's)")
    else:
        code, wall, times = profile_repro(args.repro_args, times=args.times, fork_server=args.fork_server)
    try:
        rows = stage_rows(read_times(times))
    finally:
        if not (args.source or args.times):
            times.unlink(missing_ok=True)
    print(format_profile(rows, wall))
    if args.save:
        atomic_write_json(args.save, profile_document(rows, wall, [] if args.source else args.repro_args))
    return code


class _DictAction(argparse.Action):
    """mmengine's ``DictAction`` (``KEY=VALUE`` pairs, dotted keys, lists), imported when the flag is used."""

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction

        for value in values:
            if "=" not in value or value.startswith("="):  # mmengine's would raise ValueError: a traceback
                print(f"ld: error: {option_string} {value}: give KEY=VALUE (e.g. model.test_cfg.score_thr=0.05)",
                      file=sys.stderr)
                sys.exit(2)
        DictAction(self.option_strings, self.dest)(parser, namespace, values, option_string)


def _cfg_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cfg-options", nargs="+", action=_DictAction, default=None, metavar="KEY=VALUE",
                        help="override config keys after the profile, as mmdet's tools do: dotted keys, e.g. "
                             "model.test_cfg.score_thr=0.05 train_dataloader.batch_size=4")


NMS_HELP = "test-time NMS: mmdet's plain NMS or the paper's score-voting Cluster-DIoU-NMS (default: the config's)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ld", description="Localization Distillation workspace")
    parser.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    parser.add_argument("--profile", default=None, help="profile name (default: params.yaml's profile)")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    prepare = data.add_parser("prepare", help="the profile's data stage: generate the embedded dataset, or "
                                               "check a real COCO / VOC tree (and convert VOC to COCO JSON)")
    prepare.add_argument("out", help="the folder to write (data/<profile>)")
    prepare.add_argument("--verify-images", action="store_true", help="real data: also decode every image (slow)")
    prepare.set_defaults(func=_cmd_data_prepare)
    check = data.add_parser("check", help="validate a real COCO 2017 or VOCdevkit tree; lists every problem")
    check.add_argument("layout", choices=["coco", "voc"])
    check.add_argument("root", help="dataset root (COCO: holds annotations/ and train2017/; VOC: holds VOCdevkit/)")
    check.add_argument("--verify-images", action="store_true", help="also decode every image (slow)")
    check.set_defaults(func=_cmd_data_check)

    tr = sub.add_parser("train", help="train one row config under the profile")
    tr.add_argument("config", help="a config under pipelines/configs/")
    tr.add_argument("--out", required=True, help="folder for the exported model.pth + config.py")
    tr.add_argument("--teacher", default=None, help="exported teacher folder (distillation configs)")
    tr.add_argument("--data", default=None, help="dataset root (default: data/<profile>)")
    tr.add_argument("--live", default=None, help="DVCLive folder for the training curves")
    tr.add_argument("--work-root", default="work", help="root of run folders (checkpoints to resume)")
    tr.add_argument("--launcher", default="none", choices=["none", "pytorch", "slurm"],
                    help="'pytorch' under torchrun for several GPUs")
    tr.add_argument("--seed", type=int, default=None, help="seed (default: params.yaml's seed)")
    tr.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                    help="continue from the run's latest checkpoint if it has one (default); --no-resume "
                         "deletes the run's checkpoints and starts afresh")
    _cfg_options(tr)
    tr.set_defaults(func=_cmd_train)

    sd = sub.add_parser("seeds", help="the seed study: train and evaluate one of params.yaml's study runs with "
                                      "the profile's other seeds, every seed for a run of the study only "
                                      "(config NMS and voting Cluster-DIoU-NMS)")
    sd.add_argument("run", help="a run of study.baselines / study.students / study.imitation")
    sd.add_argument("--out", default=None, help="metrics folder (default: results/<profile>/seeds/<run>)")
    sd.add_argument("--models", default=None, help="models folder (default: models/<profile>/seeds/<run>)")
    sd.add_argument("--work-root", default="work", help="root of run folders (checkpoints to resume)")
    sd.add_argument("--seeds", type=int, nargs="+", default=None, metavar="K",
                    help="these of the run's seeds alone, e.g. to spread the study over machines (seeds.json "
                         "then lists them beside those it listed before)")
    sd.set_defaults(func=_cmd_seeds)

    paper = sub.add_parser("paper", help="the paper's tables").add_subparsers(dest="paper_command", required=True)
    pr = paper.add_parser("run", help="`dvc exp run` of every row of paper tables (their teachers first)")
    pr.add_argument("tables", nargs="+", help="gflv1_coco, selfld_coco, gflv2_coco, voc, full_ld_coco")
    pr.add_argument("--dry-run", action="store_true", help="print the command only")
    pr.set_defaults(func=_cmd_paper_run)

    ev = sub.add_parser("eval", help="COCO (and VOC) metrics of an exported model, the student alone")
    ev.add_argument("config", help="the run's config (models/<profile>/<run>/config.py)")
    ev.add_argument("checkpoint", nargs="?", default=None, help="its weights (not needed with --results)")
    ev.add_argument("--out", required=True, help="metrics JSON to write: {coco: {...}, voc: {...}}")
    ev.add_argument("--results", default=None, help="evaluate this COCO results file instead of the model")
    ev.add_argument("--results-out", default=None, help="keep the detections as a COCO results file (test-dev)")
    ev.add_argument("--tables", default=None, help="folder for the per-class tables (Markdown + CSV, AP in %%)")
    ev.add_argument("--nms", default=None, choices=NMS_TYPES, help=NMS_HELP)
    _cfg_options(ev)
    ev.set_defaults(func=_cmd_eval)

    cv = sub.add_parser("convert", help="strip teacher weights and optimizer state from a checkpoint")
    cv.add_argument("src", help="a distillation checkpoint (this project's or upstream LD's)")
    cv.add_argument("dst", help="the student-only checkpoint to write")
    cv.add_argument("--config", required=True, help="the student's config; the weights must fit it exactly")
    cv.set_defaults(func=_cmd_convert)

    teacher = sub.add_parser("teacher", help="released teachers").add_subparsers(dest="teacher_command", required=True)
    ti = teacher.add_parser("import", help="export a released checkpoint (mmdet 2.x/3.x GFL, GFocalV2) as a run's "
                                           "teacher folder, after checking it fits the run's config exactly")
    ti.add_argument("checkpoint", help="the .pth file, or an http(s) URL (downloaded once to ~/.cache/ld-workspace)")
    ti.add_argument("--run", required=True,
                    help="the run it stands for (a config of pipelines/configs/, e.g. gfl_r101_2x)")
    ti.add_argument("--out", default=None, help="the folder to write (default models/<profile>/<run>)")
    ti.add_argument("--sha256", default=None, help="the file's SHA-256, or its first 8+ hex digits (mmdet's file names "
                                                   "end in them)")
    ti.add_argument("--published-ap", type=float, default=None, help="the box AP its publisher reports, in %%")
    ti.set_defaults(func=_cmd_teacher_import)

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench_command", required=True)
    fps = bench.add_parser("fps", help="inference FPS of the student alone")
    fps.add_argument("config")
    fps.add_argument("checkpoint")
    fps.add_argument("--images", type=int, default=50, help="timed images")
    fps.add_argument("--warmup", type=int, default=5, help="untimed batches first")
    fps.add_argument("--batch-size", type=int, default=1)
    fps.add_argument("--nms", default=None, choices=NMS_TYPES, help=NMS_HELP)
    fps.add_argument("--out", default=None, help="JSON to write")
    fps.set_defaults(func=_cmd_bench_fps)

    nb = sub.add_parser("notebook", help="execute a notebook with papermill (project kernel, repo root)")
    nb.add_argument("src")
    nb.add_argument("dst")
    nb.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a parameter (VALUE read as YAML); 'profile' defaults to the profile")
    nb.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    nb.set_defaults(func=_cmd_notebook)

    sh = sub.add_parser("show", help="an exported model's edge distributions on any image: its boxes with each "
                                     "edge's distribution drawn along the edge (the LD paper's Fig. 1)")
    sh.add_argument("config", help="the run's config (models/<profile>/<run>/config.py)")
    sh.add_argument("checkpoint", help="its weights (model.pth)")
    sh.add_argument("image", help="a JPEG or PNG image, any size")
    sh.add_argument("--out", default=None, help="the PNG to write (default: <image name>.distributions.png here)")
    sh.add_argument("--box", nargs=4, type=float, default=None, metavar=("X1", "Y1", "X2", "Y2"),
                    help="draw the detection that overlaps this box most (image pixels), against it")
    sh.add_argument("--score-thr", type=float, default=0.3, help="lowest detection score drawn (default 0.3)")
    sh.add_argument("--top-k", type=int, default=1, help="without --box: the k best detections, a panel each")
    sh.set_defaults(func=_cmd_show)

    rp = sub.add_parser("report", help="execute the analysis notebooks and render HTML reports with an index")
    rp.add_argument("--out", default=None, help="the folder it writes, nothing outside it: reports/ (the HTML pages, "
                                                "index.html), notebooks/ and figures/ (default: results/<profile>)")
    rp.add_argument("--only", nargs="+", default=None, metavar="PAGE",
                    help="these pages alone: runs_table, ambiguity, compare_runs, seeds_table, paper_<table>")
    rp.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a notebook parameter (VALUE read as YAML), passed to every notebook")
    rp.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    rp.set_defaults(func=_cmd_report)

    cp = sub.add_parser("compare", help="two result trees (two machines, revisions or experiments) metric by metric "
                                        "within a stated tolerance: exit 0 if all agree, 1 if not")
    cp.add_argument("a", help="a result tree: a folder (results/smoke) or REV:PATH (HEAD:results/smoke)")
    cp.add_argument("b", help="the other tree")
    cp.add_argument("--spread-factor", type=float, default=2.0,
                    help="AP tolerance in units of A's seed spread (tables/seeds.csv; default 2)")
    cp.add_argument("--ap-tol", type=float, default=None, help="AP tolerance as a fraction (overrides the spread)")
    cp.add_argument("--curve-rtol", type=float, default=0.1,
                    help="loss curves: largest relative difference at any step (default 0.1)")
    cp.set_defaults(func=_cmd_compare)

    cd = sub.add_parser("code-deps", help="the ld/ files a command runs (its import closure, read from the code) "
                                          "with their SHA-256, as JSON: dvc.yaml's code stages")
    cd.add_argument("out", help="the JSON file to write")
    cd.add_argument("command_argv", nargs=argparse.REMAINDER, metavar="LD_ARGS",
                    help="the command, as `ld` takes it (e.g. train x.py --out x)")
    cd.set_defaults(func=_cmd_code_deps)

    st = sub.add_parser("stage-times", allow_abbrev=False,
                        help="run `dvc repro` and print where its time went: per stage (and per kind of stage) the "
                             "wall, import and work seconds of its `ld` processes")
    st.add_argument("repro_args", nargs=argparse.REMAINDER, metavar="DVC_REPRO_ARGS",
                    help="passed to `dvc repro` as they are (e.g. -f, a stage name)")
    st.set_defaults(repro_args=[])
    st.add_argument("--times", default=None, help="also keep the raw lines in this file (appended to)")
    st.add_argument("--from", dest="source", default=None, help="print the table of a file of such lines "
                                                                 "(--times's, or LD_STAGE_TIMES's) instead of running")
    st.add_argument("--save", default=None, help="write the table as JSON here too")
    st.add_argument("--no-fork-server", dest="fork_server", action="store_false",
                    help="run each stage's `ld` in a process of its own, importing torch, mmengine and mmdet "
                         "anew (default: a fork server preloads them once, ld/fork_server.py)")
    st.set_defaults(func=_cmd_stage_times)

    fs = sub.add_parser("fork-server", help="(started by `ld stage-times`) preload torch, mmengine and mmdet, "
                                             "then run each `ld` command of a `dvc repro` in a forked child")
    fs.add_argument("socket", help="the Unix socket to listen on (LD_FORK_SERVER of the commands)")
    fs.set_defaults(func=_cmd_fork_server)

    df = sub.add_parser("diff", help="two revisions or experiments side by side: the params that differ and each "
                                     "run's AP, AP50, AP75, VOC AP in %% (A, B, B-A), in under 160 columns")
    df.add_argument("a", nargs="?", default="HEAD", help="a git revision or DVC experiment name (default HEAD)")
    df.add_argument("b", nargs="?", default="workspace", help="another, or 'workspace' (default)")
    df.add_argument("--all", action="store_true", help="every run, not only those whose metrics differ")
    df.set_defaults(func=_cmd_diff)
    return parser




def _seconds_since_start() -> float:
    """How long ago this process started (Linux: its start time in /proc against the uptime, 10 ms ticks),
    so the interpreter's start-up counts as import time too; 0 where /proc is missing."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        return max(0.0, float(Path("/proc/uptime").read_text().split()[0]) - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _clock_imports() -> dict:
    """Count the seconds spent in imports from now on (the outermost import of a nest only; the
    ``__import__`` statement hook and ``importlib.import_module``, which mmengine's registries use)."""
    import builtins
    import importlib
    import time

    clock = {"imports": 0.0, "depth": 0, "restore": (builtins.__import__, importlib.import_module)}

    def timed(load):
        def wrapper(*args, **kwargs):
            if clock["depth"]:
                return load(*args, **kwargs)
            clock["depth"], start = 1, time.perf_counter()
            try:
                return load(*args, **kwargs)
            finally:
                clock["imports"] += time.perf_counter() - start
                clock["depth"] = 0
        return wrapper

    builtins.__import__ = timed(builtins.__import__)
    importlib.import_module = timed(importlib.import_module)
    return clock


def _record_times(path: str, argv: list[str], started: float, clock: dict, code: int) -> None:
    """Append this process's line to ``path``: its stage, command, start and end (epoch seconds), import
    seconds (start-up included), CPU seconds and exit code (one ``write`` of a short line: atomic)."""
    import time

    cpu = os.times()
    line = json.dumps({"stage": os.environ.get("DVC_STAGE", ""), "pid": os.getpid(), "ppid": os.getppid(),
                       "command": " ".join(["ld", *argv]), "start": round(started, 3), "end": round(time.time(), 3),
                       "imports": round(clock["imports"], 3), "cpu": round(cpu.user + cpu.system, 3), "exit": code})
    with open(path, "a", encoding="utf-8") as times:
        times.write(line + "\n")


def main(argv: list[str] | None = None, *, started: float | None = None, imports: float = 0.0) -> int:
    """``ld ARGV`` (default: this process's arguments). ``started``, ``imports``: where the command runs in a
    child of the fork server (:mod:`ld.fork_server`), the start and import seconds of the ``ld`` process that
    handed it over, for its ``stage-times`` line."""
    if argv is None and os.environ.get(FORK_SERVER_ENV):
        code = _delegate(sys.argv[1:])
        if code is not None:
            return code
    times_file = os.environ.get(STAGE_TIMES_ENV)
    if not times_file:
        return _main(argv)
    import time

    # a test's call has no start-up of its own; a fork server's child, its client's
    startup = _seconds_since_start() if argv is None else 0.0
    clock = _clock_imports()
    if started is None:
        started, clock["imports"] = time.time() - startup, clock["imports"] + startup
    else:
        clock["imports"] += imports
    argv = sys.argv[1:] if argv is None else argv
    code = 1
    try:
        code = _main(argv)
        return code
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
        raise
    finally:
        import builtins
        import importlib

        builtins.__import__, importlib.import_module = clock["restore"]
        _record_times(times_file, argv, started, clock, code)


def _delegate(argv: list[str]) -> int | None:
    """This command run by the fork server that ``LD_FORK_SERVER`` names (:func:`ld.fork_server.delegate`),
    its exit code; None where it runs here: no server, or an environment the server's is not (the
    environment compared is this one with the deterministic mode the command's profile asks for)."""
    import contextlib
    import io
    import time

    from ld.fork_server import delegate

    if argv[:1] == ["fork-server"] or "-h" in argv or "--help" in argv:
        return None
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            args, _ = build_parser().parse_known_args(argv)
    except SystemExit:
        return None  # a usage error: printed by the command itself
    _pin(args)  # as the command itself would (and will, where it runs here)
    startup = _seconds_since_start()
    return delegate(argv, dict(os.environ), started=time.time() - startup, imports=startup)


def _pin(args) -> None:
    """The deterministic mode that the command's profile asks for, set before torch starts (ld.cpu_pinning): in
    an `ld` process (not in a process that calls main() with torch loaded already, such as a test's or a fork
    server's child, whose server set it)."""
    from ld.cpu_pinning import pin_process, wants_pinning

    if "torch" not in sys.modules and wants_pinning(args.params, args.profile):
        pin_process()


def _cmd_fork_server(args) -> int:
    from ld.fork_server import serve

    try:
        code = serve(args.socket, main)
    except SystemExit as stop:  # SIGTERM: the `dvc repro` it served is over
        code = stop.code
    # its socket is closed and removed, its children are on their own: skip the interpreter's teardown of torch
    # and mmdet (1.8 s of every `ld stage-times`, against 0.06 s)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def _main(argv: list[str] | None) -> int:
    import gc
    import warnings

    # The start-up imports torch, mmengine and mmdet: hundreds of thousands of objects that live as long as the
    # process, which the cyclic garbage collector would walk again and again (about 15% of the import time).
    # It stays off until a run starts (ld.engine.console.collect_garbage_again), or to the end of a command
    # that runs none.
    collecting = gc.isenabled()
    gc.disable()
    try:
        # mmengine imports pkg_resources, which setuptools 80 deprecates on every run (the library itself does
        # not touch the process's warning filters: this is the command's console)
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated as an API", category=UserWarning)
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
        if args.command == "stage-times":  # its arguments are dvc repro's, options included
            args.repro_args = [*unknown, *args.repro_args]
        elif unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        _pin(args)
        try:
            return args.func(args) or 0
        except LDError as err:
            print(f"ld {args.command}: error: {err}", file=sys.stderr)
            return 2
    finally:
        if collecting:
            gc.enable()


if __name__ == "__main__":
    sys.exit(main())
