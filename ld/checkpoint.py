"""Loading mmengine checkpoints with ``torch.load(weights_only=True)`` kept on.

torch >= 2.6 loads with ``weights_only=True`` by default, which refuses the non-tensor objects
mmengine stores in a checkpoint's ``meta`` (its message hub's ``HistoryBuffer`` and the numpy arrays
and scalars inside it). Rather than switching that safety off, :func:`allow_mmengine_globals`
allow-lists exactly those types; any other pickled object is still refused, and
:func:`load_checkpoint` turns that refusal into an error that names the file and what to do.
"""
from __future__ import annotations

import functools
import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ld.errors import BadFileError, MissingFileError
from ld.layout import making_stage

_HISTORY_BUFFER_STATISTICS = frozenset({"min", "max", "current", "mean"})


def history_buffer_statistic(owner: Any, name: str) -> Any:
    """The one ``getattr`` an mmengine checkpoint pickles: a statistics method of ``HistoryBuffer``.

    ``HistoryBuffer`` stores ``{'min': HistoryBuffer.min, ...}``, which pickle writes as
    ``getattr(HistoryBuffer, 'min')``. Allow-listing the builtin ``getattr`` would let a checkpoint
    reach any attribute of any allowed object, so this stands in for it and accepts only those four.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    if owner is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f"refused getattr({owner!r}, {name!r}) while loading a checkpoint: only "
                                 f"HistoryBuffer's statistics methods are allowed")


def _mmengine_safe_globals() -> list:
    from mmengine.logging.history_buffer import HistoryBuffer
    from numpy._core import multiarray

    # numpy 2 pickles these under numpy._core; checkpoints written under numpy 1 name numpy.core.
    numpy_types = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
                   (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
                   (multiarray.scalar, "numpy.core.multiarray.scalar")]
    dtype_classes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.float16, np.int64,
                                                  np.int32, np.bool_)]
    return [HistoryBuffer, (history_buffer_statistic, "builtins.getattr"), *numpy_types, *dtype_classes]


def allow_mmengine_globals() -> None:
    """Allow-list the types mmengine writes into checkpoints (idempotent)."""
    torch.serialization.add_safe_globals(_mmengine_safe_globals())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu", *,
                    mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; clear errors for a missing or unsafe file.
    ``mmap``: map the tensors instead of reading them (a cheap check that the file loads)."""
    path = Path(path)
    require_files(path, what="checkpoint")
    allow_mmengine_globals()
    if path.stat().st_size == 0:
        raise BadFileError(f"checkpoint {path} is empty (0 bytes): a write that never finished; train or copy it "
                           "again")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ... by version and damage
        text = str(err)
        # torch's weights_only refusal wraps its unpickler's own words: a refused type names a GLOBAL; a
        # damaged or non-checkpoint file shows as an unsupported operand, a bad load key or a zip error
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("Weights only",
                                                                                               "Please file", "Check"))]
        detail = (lines or [type(err).__name__])[0].strip()
        if "Unsupported global" in text or "GLOBAL" in text:
            raise BadFileError(
                f"checkpoint {path} carries pickled objects that are not plain weights or mmengine "
                f"training state, so it is refused (torch.load weights_only=True). If you trust the "
                f"file, convert it to a plain state_dict first. Details: {detail}") from err
        raise BadFileError(f"checkpoint {path} cannot be read as a PyTorch checkpoint: truncated, damaged or not a "
                           f"checkpoint ({type(err).__name__}: {detail}); train or copy it again") from err
    if not isinstance(checkpoint, dict):
        raise BadFileError(f"checkpoint {path} holds a {type(checkpoint).__name__}, not a checkpoint (a dict with "
                           "a state_dict)")
    return checkpoint


# What a saved model keeps of mmengine's checkpoint meta: no times, paths, logs or versions (mmengine
# appends the working tree's git commit to its version), so the same weights give the same bytes.
STABLE_META = ("epoch", "iter", "seed", "dataset_meta")


def state_dict_mismatch(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> str:
    """How ``given`` fails to fit ``expected`` (missing, unexpected, other-shape keys); '' if it fits."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong = sorted(k for k in set(expected) & set(given) if expected[k].shape != given[k].shape)
    if not (missing or unexpected or wrong):
        return ""
    shapes = "; ".join(f"{k}: {tuple(given[k].shape)} in the checkpoint, {tuple(expected[k].shape)} in the model"
                       for k in wrong[:3])
    return (f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}, "
            f"{len(wrong)} keys of another shape {wrong[:5]}" + (f" ({shapes})" if shapes else ""))


def load_weights(model: torch.nn.Module, path: str | os.PathLike, what: str = "checkpoint") -> None:
    """Load ``path``'s weights into ``model`` exactly; an error naming the keys if they do not fit."""
    state = load_checkpoint(path)
    state = {k.removeprefix("module."): v for k, v in state.get("state_dict", state).items()}
    problem = state_dict_mismatch(model.state_dict(), state)
    if problem:
        raise BadFileError(f"{what} {path} does not fit its config: {problem} (wrong architecture or number "
                           "of classes?). Give the checkpoint trained with this config.")
    model.load_state_dict(state, strict=True)


def save_weights(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Save weights and the stable part of ``meta`` atomically (:func:`save_checkpoint`)."""
    return save_checkpoint(path, {"state_dict": state_dict,
                                  "meta": {k: v for k, v in meta.items() if k in STABLE_META}})


def save_checkpoint(path: str | os.PathLike, checkpoint: dict[str, Any]) -> Path:
    """``torch.save`` atomically (temporary file + rename): a full disk or a kill leaves the old file, or
    none, and no partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (a checkpoint's identity). Computed once per file version in a process:
    a run asks for its teacher's digest for the run folder, the soft-target cache and the cache's check."""
    st = os.stat(path)
    return _file_digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int, inode: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _making_stage(run_dir: Path, params_file: str | os.PathLike = "params.yaml") -> str | None:
    """:func:`ld.layout.making_stage` of ``run_dir`` by ``params_file`` (None where it cannot be read)."""
    try:
        import yaml

        params = yaml.safe_load(Path(params_file).read_text()) or {}
    except (OSError, yaml.YAMLError):  # no readable params file: the hint is all that is lost
        return None
    return making_stage(run_dir, params)


def remote_holds(run_dir: str | os.PathLike, lock_file: str | os.PathLike = "dvc.lock") -> tuple[bool, str] | None:
    """Whether the DVC remote holds the version of the output ``run_dir`` that ``dvc.lock`` names, and the
    remote's location: ``(holds, url)``, or None where that cannot be told (no lock entry for it, no
    remote, DVC cannot read the repository). A remote another machine filled with other bits, or an empty
    one, does not hold it: ``dvc pull`` would fail to check it out."""
    try:
        import yaml

        lock = yaml.load(Path(lock_file).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        wanted = Path(run_dir).as_posix()
        md5 = next(out["md5"] for stage in (lock.get("stages") or {}).values() for out in stage.get("outs") or []
                   if out.get("path") == wanted and out.get("md5"))
        from dvc.repo import Repo

        with Repo(str(Path(lock_file).resolve().parent)) as repo:
            odb = repo.cloud.get_remote_odb()
            return bool(odb.exists(md5)), str(odb.fs.unstrip_protocol(odb.path).rsplit("/files/", 1)[0])
    except Exception:  # noqa: BLE001  (no lock entry, no remote, an unreachable one: only the hint is lost)
        return None


def missing_model(path: str | os.PathLike, what: str = "model") -> MissingFileError:
    """The one-line error for a missing file of a run folder: for ``models/<profile>/<run>/...``, how to get it
    (``dvc pull`` from the remote when it holds the version dvc.lock names, :func:`remote_holds`; else
    ``dvc repro`` of the stage that makes it, :func:`ld.layout.making_stage`, or another remote)."""
    path = Path(path)
    stage = _making_stage(path.parent)
    if stage:
        held = remote_holds(path.parent)
        if held is not None and not held[0]:
            return MissingFileError(f"{what} {path} not found, and the DVC remote ({held[1]}) does not hold the "
                                    f"version dvc.lock names: make it with `dvc repro {stage}` (or `make run`: "
                                    "everything), or point the remote at a store that holds it (`dvc remote "
                                    "modify --local storage url PATH`)")
        return MissingFileError(f"{what} {path} not found: get it with `dvc pull {path.parent}` (from the DVC "
                                f"remote) or `dvc repro {stage}`")
    return MissingFileError(f"{what} {path} not found: give an existing file (a run exported by `ld train --out DIR` "
                            "holds DIR/config.py and DIR/model.pth)")


def require_files(*paths: str | os.PathLike | None, what: str | None = None) -> None:
    """A :func:`missing_model` error for the first of ``paths`` (None: not needed) that is not a file, naming
    it ``what`` (default: ``config`` for a ``.py`` file, else ``model``)."""
    for path in paths:
        if path is not None and not Path(path).is_file():
            raise missing_model(path, what or ("config" if Path(path).suffix == ".py" else "model"))


def read_config(path: str | os.PathLike, what: str = "config", fix: str = "give an exported run's config.py",
                need_model: bool = True):
    """The mmengine Config of ``path``, or a one-line :class:`BadFileError` naming it ``what`` and saying
    ``fix`` where mmengine cannot read it (a syntax error, a ``_base_`` file that is not beside it, ...) or,
    with ``need_model``, it defines no ``model``."""
    from mmengine.config import Config

    try:
        cfg = Config.fromfile(str(path))
    except Exception as err:  # mmengine raises SyntaxError, OSError, KeyError, ... by what is wrong
        detail = (str(err).strip().splitlines() or [""])[0]
        raise BadFileError(f"{what} {path} cannot be read as an mmdet config ({type(err).__name__}: {detail}): "
                           f"{fix}") from err
    if need_model and "model" not in cfg:
        raise BadFileError(f"{what} {path} defines no `model`: {fix}")
    return cfg


def require_exported(run_dir: str | os.PathLike, what: str | None = None) -> tuple[Path, Path]:
    """``(config.py, model.pth)`` of an exported run folder, or the :func:`missing_model` error of the first
    that is missing."""
    files = Path(run_dir) / "config.py", Path(run_dir) / "model.pth"
    require_files(*files, what=what)
    return files
