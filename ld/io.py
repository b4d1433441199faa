"""Atomic file writes: a crash never leaves a half-written results file behind."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600; results are ordinary files
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """JSON with sorted keys and a trailing newline, so equal content gives equal bytes."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def listing_digest(folder: str | os.PathLike) -> str:
    """SHA-256 of the names and sizes of the files under ``folder`` (sorted; '' names nothing if absent):
    a cheap identity of an image folder, which changes when a file is added, removed or rewritten."""
    import hashlib

    folder, digest = Path(folder), hashlib.sha256()
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(folder)}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def check_export_dir(out_dir: str | os.PathLike, files: tuple[str, ...]) -> Path:
    """Make sure ``out_dir`` can take an export of ``files`` (a run's ``config.py`` and ``model.pth``, an
    imported teacher's ``source.json`` too) before any work: a new or empty folder, or an earlier export
    holding only those files, and writable. Temporary files left by a killed export are removed; any
    other content is refused (an export never deletes what it did not write)."""
    from ld.errors import ConfigError

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file: give the folder for the export ({', '.join(files)})")
    if out_dir.is_dir():
        for leftover in out_dir.glob(".*.tmp"):
            if any(leftover.name.startswith(f".{name}.") for name in files):
                leftover.unlink()
        others = sorted(p.name for p in out_dir.iterdir() if p.name not in files)
        if others:
            raise ConfigError(f"--out {out_dir} holds files that are not a run's export ({', '.join(others[:5])}"
                              f"{', ...' if len(others) > 5 else ''}); nothing was written. Give the run's own "
                              f"folder (e.g. {out_dir / 'gfl_r18_1x'}), a new or an empty one.")
    _require_writable(out_dir, "--out", "a folder")
    return out_dir


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """Make sure the file ``path`` (given as ``flag``) can be written, before any work: not a folder, and its
    folder writable, or creatable (nothing is created)."""
    from ld.errors import ConfigError

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder: give the file to write (e.g. {path / 'metrics.json'})")
    _require_writable(path.parent, f"{flag} {path}: its folder", "a file in a folder")
    return path


def check_output_folder(folder: str | os.PathLike, flag: str) -> Path:
    """Make sure files can be written into ``folder`` (given as ``flag``), before any work: not a file, and
    writable, or creatable (nothing is created)."""
    from ld.errors import ConfigError

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{flag} {folder} is a file: give the folder to write into")
    _require_writable(folder, flag, "a folder")
    return folder


def _require_writable(folder: Path, named: str, give: str) -> None:
    """A file made and removed in ``folder``, or in its nearest existing parent (nothing is created); a
    one-line ConfigError naming ``named`` if that fails (a parent that is a file, no permission)."""
    from ld.errors import ConfigError

    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, f"{existing} is a file")
        probe = existing / f".write-check-{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"{named} {folder} is not writable ({err.strerror}): give {give} you can write to "
                          "(checked before any work, so none is lost)") from err
