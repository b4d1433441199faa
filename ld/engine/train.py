"""A thin runner over mmengine: resolve a row config against a profile, train it, export the model.

A run's scratch folder (``work/<profile>/<run>/<digest>``) is keyed by everything that defines the
run (the resolved config, the teacher's checkpoint bytes and the data it trains on), so a killed run
resumes from its last checkpoint, while a run whose parameters or data changed starts afresh instead of
resuming stale state. The exported model (``models/<profile>/<run>/{model.pth,config.py}``) is what
later stages use; exporting writes only those two files, each atomically.
"""
from __future__ import annotations

import copy
import errno
import fcntl
import hashlib
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ld import cpu_pinning
from ld.checkpoint import file_digest, load_checkpoint, read_config, require_exported, save_checkpoint, save_weights
from ld.engine import determinism, live, merge_options, nonfinite, unformatted  # noqa: F401  (register what a run adds)
from ld.engine.convert import student_state_dict
from ld.engine.initial_weights import recorded
from ld.errors import BadFileError, ConfigError, LDError, MissingFileError
from ld.io import atomic_write_bytes, atomic_write_json, check_export_dir, listing_digest
from ld.models.distiller import DISTILLERS, LocalizationDistiller
from ld.models.teacher_cache import fingerprint_digest
from ld.profiles import get_profile, inner_dataset, resolve_config, train_pipeline


def is_distiller(cfg) -> bool:
    """Whether ``cfg`` trains a student from a teacher."""
    return cfg.model.type in DISTILLERS


PAPER_LD_WEIGHT = 0.25  # the LD weight of the GFocal recipe (_base_/ld.py), which params.yaml's ld.loss_weight sets


def apply_ld_params(head, ld_params: dict[str, Any]) -> None:
    """params.yaml's ``ld`` (``temperature``, ``loss_weight``) set T and the weight of both LD terms
    (main region and VLR) of a distillation head, for experiments like ``-S ld.temperature=5``
    (``ld.teacher_cache`` and ``ld.teacher_precision`` are read by :func:`build_train_config`).

    ``loss_weight`` is the GFocal recipe's weight (0.25, both terms); a head whose recipe weighs its
    terms otherwise (RetinaNet's main LD 5, the ATSS / FCOS / RetinaNet VLR factors) scales them by
    ``loss_weight / 0.25``, so the default leaves every recipe as it is."""
    for term in ("ld_main", "ld_vlr"):
        if "temperature" in ld_params:
            head[term].T = float(ld_params["temperature"])
        if "loss_weight" in ld_params:
            head[term].loss_weight = head[term].loss_weight * float(ld_params["loss_weight"]) / PAPER_LD_WEIGHT
        if not head[term].T > 0:
            raise ConfigError(f"params.yaml: ld.temperature must be > 0, got {head[term].T}")


def build_train_config(
    config: str | Path,
    params: dict[str, Any],
    *,
    profile: str | None = None,
    data_root: str | Path | None = None,
    teacher_dir: str | Path | None = None,
    work_root: str | Path = "work",
    live_dir: str | Path | None = None,
    launcher: str = "none",
    cfg_options: dict[str, Any] | None = None,
):
    """The mmengine ``Config`` of one run: row config + profile + seed + teacher + ``cfg_options`` + logging.

    Args:
        config: a row config under ``pipelines/configs``.
        params: the parsed ``params.yaml``.
        profile: profile name (default ``params['profile']``).
        data_root: dataset root (default ``data/<profile>``).
        teacher_dir: for a distillation config, the exported teacher (``config.py`` + ``model.pth``).
        work_root: where run folders with intermediate checkpoints live.
        live_dir: DVCLive folder for the training curves (none if not given).
        launcher: mmengine launcher: 'none' (one process) or 'pytorch' (torchrun).
        cfg_options: overrides with dotted keys (``{'optim_wrapper.optimizer.lr': 0.001}``, what mmengine's
            ``DictAction`` parses from ``--cfg-options KEY=VALUE``), merged after the profile, the seed and the
            teacher's settings, so they win; part of the run's digest. A key whose first part is not a key of
            the config is refused (mmengine would add it, and nothing would read it).
    """
    config = Path(config)
    profile = profile or params["profile"]
    cfg = _assemble(config, params, profile, data_root, launcher)
    teacher_digest = _wire_teacher(cfg, config, params, teacher_dir) if is_distiller(cfg) else ""
    merge_options(cfg, cfg_options, config)
    if is_distiller(cfg) and (params.get("ld") or {}).get("teacher_cache", False):
        _wire_teacher_cache(cfg, Path(teacher_dir), Path(work_root) / profile)
    _add_run_hooks(cfg)
    _set_identity(cfg, config, Path(work_root) / profile, teacher_digest)
    if live_dir is not None:  # the curves of the log lines (ld.engine.live), not part of the run's digest
        cfg.visualizer.vis_backends = [*cfg.visualizer.vis_backends, dict(
            type="DVCLiveCurves", save_dir=str(live_dir), resume=_last_checkpoint(Path(cfg.work_dir)) is not None)]
    return cfg


def _assemble(config: Path, params: dict[str, Any], profile: str, data_root, launcher: str):
    """The row config with the profile applied (:func:`ld.profiles.resolve_config`), the run's seed, the
    deterministic mode's kernels and the launcher."""
    num_gpus = int(os.environ.get("WORLD_SIZE", params.get("num_gpus", 1)))
    cfg = resolve_config(config, params, profile, data_root=data_root, num_gpus=num_gpus)
    cfg.randomness = dict(seed=int(params.get("seed", 0)), deterministic=False)
    if get_profile(params, profile).get("deterministic"):
        # the kernels this run computes with (ld.cpu_pinning), in its config and so in its digest; None: the
        # profile asks for the deterministic mode but this process was not started pinned (by `ld`)
        cfg.cpu_pinning = cpu_pinning.active()
    cfg.launcher = launcher
    cfg.env_cfg.dist_cfg = dict(backend="nccl" if torch.cuda.is_available() else "gloo")
    if launcher != "none" and not torch.cuda.is_available():
        # DDP of a CPU module takes no device ids (mmengine's default passes LOCAL_RANK as one)
        cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None, broadcast_buffers=False)
    return cfg


def _wire_teacher(cfg, config: Path, params: dict[str, Any], teacher_dir: str | Path | None) -> str:
    """A distiller's teacher: the exported folder's config and weights, checked, and params.yaml's ``ld``
    (T, weights, the teacher's precision); returns the SHA-256 of the teacher's weights (part of the run's
    identity: a retrained teacher starts the student afresh)."""
    if teacher_dir is None:
        raise ConfigError(f"{config} distils from a teacher: pass --teacher <exported teacher folder>")
    teacher_dir = Path(teacher_dir)
    read_config(require_exported(teacher_dir, what="teacher")[0], what="teacher config",
                fix="a teacher folder holds the whole config.py that `ld train` or `ld teacher import` writes; "
                    "for a checkpoint from a model zoo, make the folder with `ld teacher import CHECKPOINT "
                    "--run <its row>`", need_model=False)  # read when the distiller is built
    if cfg.get("teacher") and teacher_dir.name != cfg.teacher:
        raise ConfigError(f"{config} distils from '{cfg.teacher}', but --teacher is {teacher_dir}: "
                          "fix params.yaml's distill entry or the config's `teacher`")
    cfg.model.teacher_config = str(teacher_dir / "config.py")
    cfg.model.teacher_ckpt = str(teacher_dir / "model.pth")
    apply_ld_params(cfg.model.bbox_head, params.get("ld") or {})
    if "teacher_precision" in (params.get("ld") or {}):
        cfg.model.teacher_precision = str(params["ld"]["teacher_precision"])
    return file_digest(teacher_dir / "model.pth")


def _wire_teacher_cache(cfg, teacher_dir: Path, profile_work: Path) -> None:
    """Offline LD: soft targets in a folder named after what they depend on (set after the options: they may
    change the head or the augmentation), so a retrained teacher or another augmentation gets its own."""
    pipeline = train_pipeline(cfg)
    fingerprint = LocalizationDistiller.cache_fingerprint(teacher_dir / "model.pth", cfg.model.bbox_head,
                                                          pipeline, cfg.model.teacher_precision)
    cfg.model.teacher_cache = dict(
        dir=str(profile_work / "teacher_cache" / teacher_dir.name / fingerprint_digest(fingerprint)), pipeline=pipeline)


def _add_run_hooks(cfg) -> None:
    """What every run adds to its config: the generators seeded per epoch and workers started per epoch (a
    resumed run ends with the same bytes), a non-finite loss stopping the run, the digest of the weights it
    starts from (ld.engine.initial_weights), and the log lines."""
    cfg.custom_hooks = list(cfg.get("custom_hooks", [])) + [dict(type="EpochSeedHook", seed=cfg.randomness.seed),
                                                            dict(type="NonFiniteLossHook"),
                                                            dict(type="InitialWeightsHook")]
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[key].persistent_workers = False
    cfg.train_dataloader.worker_init_fn = dict(type="epoch_worker_init")
    # mmengine's log line every `interval` iterations of an epoch and at its end (so the last iteration is
    # logged): the mean losses of the last `interval` iterations, named `train/<loss>` for the curves (the
    # visualizer's backends get them); validation metrics at the iteration they were computed
    cfg.default_hooks.logger.update(ignore_last=False, log_metric_by_epoch=False)
    cfg.log_processor.update(window_size=cfg.default_hooks.logger.interval, log_with_hierarchy=True)


def _set_identity(cfg, config: Path, profile_work: Path, teacher_digest: str) -> None:
    """The run's identity: the data it trains on (``data_identity``, exported with the model) and the digest
    of the teacher's weights and the whole config, which names its work folder
    ``work/<profile>/<run>/<digest[:12]>`` (mmengine resumes from the latest checkpoint there)."""
    cfg.data_identity = data_identity(cfg)  # in the exported config too: what the model was trained on
    digest = hashlib.sha256(teacher_digest.encode())
    digest.update(cfg.pretty_text.encode())
    cfg.work_dir = str(profile_work / config.stem / digest.hexdigest()[:12])
    cfg.run_digest = digest.hexdigest()
    cfg.resume = True
    cfg.load_from = None


def _live_backends(cfg) -> list:
    return [b for b in cfg.get("visualizer", {}).get("vis_backends", []) if b.get("type") == "DVCLiveCurves"]



def _datasets(cfg):
    for key in ("train_dataloader", "val_dataloader"):
        yield key, inner_dataset(cfg[key].dataset)


def data_identity(cfg) -> dict[str, dict[str, str]]:
    """What a run trains and validates on: per split, the SHA-256 of its annotation file's bytes and of
    the names and sizes of the files in its image folder ('missing' for an annotation file not there).
    Part of the run's digest, so new or fixed data never resumes a run trained on the old data."""
    identity = {}
    for key, dataset in _datasets(cfg):
        root = Path(dataset.data_root)
        ann = root / dataset.ann_file  # an absolute ann_file stays as it is
        images = root / dataset.get("data_prefix", {}).get("img", "")
        identity[key.removesuffix("_dataloader")] = {
            "annotations": file_digest(ann) if ann.is_file() else "missing", "images": listing_digest(images)}
    return identity


EXPORTED = ("config.py", "model.pth")


def export_model(work_dir: str | Path, cfg, out_dir: str | Path) -> Path:
    """Copy the last checkpoint of ``work_dir`` (weights and meta, no optimizer) and the resolved
    config to ``out_dir/config.py`` and ``out_dir/model.pth``: only these two files are written, each
    atomically (the config first, the weights last), so a kill leaves the old or the new model."""
    work_dir, out_dir = Path(work_dir), check_export_dir(out_dir, EXPORTED)
    last = _last_checkpoint(work_dir)
    if last is None:
        raise MissingFileError(f"{work_dir} has no last_checkpoint: the run did not save a checkpoint")
    ckpt = load_checkpoint(last)
    exported = copy.deepcopy(cfg)  # the run's config without its curves (a test run would clear them)
    live_backends = _live_backends(exported)
    if live_backends:
        exported.visualizer.vis_backends = [b for b in exported.visualizer.vis_backends if b not in live_backends]
    # nothing to resume: mmdet's own tools/test.py sets load_from to the checkpoint and tests it (a `resume`
    # would look for the optimizer and message hub, which model.pth does not keep)
    exported.resume = False
    digest = recorded(work_dir)
    if digest is not None:  # what the run started from: the seed study pairs runs by it
        exported.initial_weights = digest
    atomic_write_bytes(out_dir / "config.py", exported.pretty_text.encode())
    save_weights(out_dir / "model.pth", student_state_dict(ckpt), ckpt.get("meta", {}))  # no imitation adapter
    return out_dir / "model.pth"


@contextmanager
def exclusive(paths: list[str | Path], locks_dir: str | Path):
    """Hold a lock on each of ``paths`` (files under ``locks_dir``, named by the path); another holder is
    an error that says who holds it. The operating system releases the locks when the process ends."""
    locks_dir = Path(locks_dir)
    locks_dir.mkdir(parents=True, exist_ok=True)
    held = []
    try:
        for path in paths:
            name = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16]
            f = open(locks_dir / f"{name}.lock", "a+")
            try:  # a POSIX record lock: owned by this process alone, not by the dataloader workers it forks
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                f.close()
                raise LDError(f"{path} is in use by another `ld train` ({holder}): wait for it to finish, or stop "
                              "it, then run this again") from None
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} on {socket.gethostname()}, writing {path}\n")
            f.flush()
            held.append(f)
        yield
    finally:
        for f in held:
            fcntl.lockf(f, fcntl.LOCK_UN)
            f.close()


def _check_identity(cfg) -> None:
    """The run folder holds this run's checkpoints: its ``identity.json`` (written at the first start) has
    this run's digest (config, teacher and data), or a resume would continue another run."""
    record = Path(cfg.work_dir) / "identity.json"
    if record.is_file():
        try:
            recorded = json.loads(record.read_text()).get("run_digest")
        except (ValueError, AttributeError):
            recorded = None
        if recorded != cfg.run_digest:
            raise BadFileError(f"{cfg.work_dir} holds checkpoints of another run ({record} does not record this "
                               "config, teacher and data): remove the folder, or run with --no-resume")
    elif _last_checkpoint(Path(cfg.work_dir)) is not None:
        raise BadFileError(f"{cfg.work_dir} holds checkpoints of unknown origin (no identity.json): remove the "
                           "folder, or run with --no-resume")
    else:
        atomic_write_json(record, {"run_digest": cfg.run_digest, "data": cfg.data_identity})


def _check_last_checkpoint(work_dir: Path) -> None:
    """The checkpoint a resume would load is readable (its tensors memory-mapped, not read: mmengine reads
    them when it resumes); otherwise say how to go on."""
    last = _last_checkpoint(work_dir)
    if last is None:
        return
    try:
        load_checkpoint(last, mmap=True)
    except LDError as err:
        earlier = sorted((p for p in work_dir.glob("epoch_*.pth") if p != last), key=_epoch_of)
        pointer = work_dir / "last_checkpoint"
        how = (f"resume from the previous one with `echo {earlier[-1]} > {pointer}`, then run again" if earlier
               else "no earlier checkpoint is left")
        raise BadFileError(f"the run's last checkpoint cannot be loaded ({err}). To go on: {how}; or start "
                           "afresh with `ld train ... --no-resume`") from err


def train(cfg, out_dir: str | Path | None = None, *, fresh: bool = False) -> None:
    """Train ``cfg`` (resuming from its work_dir's latest checkpoint unless ``fresh``) and export it to
    ``out_dir``. The output folder is checked first; the run folder and ``out_dir`` are locked. The console
    shows a header, a line per log interval and where the model went (``ld.engine.console``); the run's log
    file has everything."""
    import shutil

    from ld.engine.console import QuietRunner, warnings_to_log

    work_dir = Path(cfg.work_dir)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    if out_dir is not None and rank0:
        check_export_dir(out_dir, EXPORTED)
    locked = [work_dir, *([out_dir] if out_dir is not None else [])] if rank0 else []
    with exclusive(locked, work_dir.parents[2] / "locks"):  # work_root/locks
        if rank0:
            if fresh and work_dir.exists():
                print(f"ld train: --no-resume: removing {work_dir} (its checkpoints)", flush=True)
                shutil.rmtree(work_dir)
                for backend in _live_backends(cfg):
                    backend["resume"] = False  # the curves start afresh with the run
            _check_identity(cfg)
            _remove_partial_checkpoints(work_dir)  # left by a run killed while saving
            _check_last_checkpoint(work_dir)
        if cfg.launcher == "pytorch" and not torch.cuda.is_available() and not torch.distributed.is_initialized():
            # mmengine's pytorch launcher selects a CUDA device; on CPUs (gloo) the group is started here from
            # torchrun's environment, and mmengine uses it as it is
            torch.distributed.init_process_group(backend="gloo")
        run_cfg = unformatted(cfg)
        run_cfg.visualizer.pop("name", None)  # mmengine's instances are global: one of its own, named after the run
        last = _last_checkpoint(work_dir)
        start = f"resumes from {last}" if last is not None else "starts afresh"
        with warnings_to_log():
            runner = QuietRunner.from_cfg(run_cfg)
            if rank0:
                to = f" -> {out_dir}" if out_dir is not None else ""
                lr_rule = f" (lr rule {dict(cfg.lr_rule)})" if cfg.get("lr_rule") else ""
                kernels = ("" if "cpu_pinning" not in cfg else " [the profile is deterministic, but this process was "
                           "not started pinned by `ld`: this CPU's own bits]" if cfg.cpu_pinning is None else
                           f" [deterministic: {cfg.cpu_pinning['isa']} kernels, {cfg.cpu_pinning['threads']} threads]")
                print(f"ld train: {work_dir.parent.name}{to}, {start}{lr_rule}{kernels}\n"
                      f"ld train: work dir {work_dir}, log {runner.logger.log_file} (environment, config, every "
                      "message)", flush=True)
            try:
                runner.train()
            except BaseException as err:
                if rank0:
                    _remove_partial_checkpoints(work_dir)
                if _is_disk_error(err):
                    raise LDError(f"training stopped: {err} while writing under {work_dir}. Free space (or fix "
                                  "the permissions), then run again: it resumes from the last complete "
                                  "checkpoint") from err
                raise
        if out_dir is not None and runner.rank == 0:
            export_model(cfg.work_dir, cfg, out_dir)
            _keep_what_a_reexport_needs(work_dir)  # the run is done
            print(f"model written to {Path(out_dir) / 'model.pth'} (config {Path(out_dir) / 'config.py'})", flush=True)


def _is_disk_error(err: BaseException) -> bool:
    """A full disk, a quota or a read-only folder (torch.save reports a failed write as a RuntimeError)."""
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)
    return isinstance(err, RuntimeError) and "write failed" in str(err)


def _remove_partial_checkpoints(work_dir: Path) -> None:
    """Delete the epoch checkpoints written after the one ``last_checkpoint`` names (mmengine updates the
    pointer after a checkpoint is complete, so a later file is a write cut short by a kill or a full disk)."""
    last = _last_checkpoint(work_dir)
    complete = _epoch_of(last) if last is not None else 0
    for path in work_dir.glob("epoch_*.pth"):
        if _epoch_of(path) > complete:
            path.unlink(missing_ok=True)


def _keep_what_a_reexport_needs(work_dir: Path) -> None:
    """Once the model is exported, a run started again with the same digest resumes at the end and only
    exports again: it needs the weights, meta, message hub and schedulers of the checkpoint
    ``last_checkpoint`` names, not its optimizer state (mmengine's ``resume`` loads an optimizer only where
    the checkpoint has one). So every earlier epoch checkpoint is deleted (mmengine keeps two while it trains:
    it deletes the older before writing the next, so a kill while saving leaves a complete one), and the last
    is rewritten, atomically, without the optimizer (SGD's momentum, the size of the weights): half of what it
    kept before (the smoke repro's 22 checkpoints: 1.16 GB instead of 2.32 GB)."""
    last = _last_checkpoint(work_dir)
    if last is None:
        return
    for path in work_dir.glob("epoch_*.pth"):
        if _epoch_of(path) < _epoch_of(last):
            path.unlink(missing_ok=True)
    checkpoint = load_checkpoint(last, mmap=True)  # read only if it is rewritten
    if checkpoint.pop("optimizer", None) is not None:
        save_checkpoint(last, checkpoint)


def _last_checkpoint(work_dir: Path) -> Path | None:
    """The checkpoint that ``work_dir/last_checkpoint`` names (mmengine writes it once a checkpoint is
    complete), or None before the first."""
    pointer = work_dir / "last_checkpoint"
    return Path(pointer.read_text().strip()) if pointer.is_file() else None


def _epoch_of(path: Path) -> int:
    stem = path.stem.removeprefix("epoch_")
    return int(stem) if stem.isdigit() else 0


def export_initial(config: str | Path, params: dict[str, Any], out_dir: str | Path, profile: str | None = None,
                   seed: int = 0) -> Path:
    """Export a run's model with its initial weights (``out_dir/config.py`` + ``model.pth``): a stand-in
    teacher for step-time benchmarks and tests, where what the teacher learnt does not matter."""
    from mmdet.registry import MODELS

    from ld.models.distiller import student_only

    cfg = student_only(resolve_config(config, params, profile))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / "config.py", cfg.pretty_text.encode())
    torch.manual_seed(seed)
    save_weights(out_dir / "model.pth", MODELS.build(cfg.model).state_dict(), {})
    return out_dir
