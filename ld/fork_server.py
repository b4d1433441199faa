"""Preloaded ``ld`` processes for a ``dvc repro``: the fork server that ``ld stage-times`` (``make run``) starts.

Every stage of the pipeline is an ``ld`` process, and each spent about 2.3 s of its smoke-size life importing
torch, mmengine and mmdet (``ld stage-times``'s import column). The fork server imports them once, under the
profile's deterministic mode like any ``ld`` process (:mod:`ld.cpu_pinning`), and forks a child per ``ld``
command that DVC starts: the command's own ``ld`` process (the client, :func:`delegate`) hands the server its
arguments, working directory, environment and standard streams, and waits for the child's exit code, passing
on the signals it gets. The child is what a fresh ``ld`` process would be after its imports: no torch
computation, thread pool or CUDA context exists before the fork (the libraries start them lazily), its
environment is the client's, and its ``stage-times`` line is its own.

A command runs in its own process as before, never through the server, unless all of these hold:
``LD_FORK_SERVER`` names a server's socket (only ``ld stage-times`` sets it, for the ``dvc repro`` it runs),
the server answers, and the client's environment, after the deterministic mode its profile asks for, is the
server's but for the variables of one stage (:data:`PER_COMMAND`: DVC's ``DVC_*``, the shell's), with the
same interpreter and the same ``ld`` package. Anything else (another profile's mode, ``torchrun``'s
variables, a server that died) runs the command in its own process, with the same results.

Linux (Unix sockets with descriptor passing, ``fork``); elsewhere ``ld stage-times`` starts no server.
"""
from __future__ import annotations

import array
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SERVER_ENV = "LD_FORK_SERVER"  # the server's socket, in the environment of the `dvc repro` that may use it
# `ld stage-times` (ld.results.stage_profile) sets this to a file: each `ld` process then appends one JSON line
# of its times to it (ld.cli.main; the stage is DVC's DVC_STAGE), the time spent importing measured apart
STAGE_TIMES_ENV = "LD_STAGE_TIMES"
# variables that differ from one command to the next without changing what an import does: DVC's (DVC_STAGE,
# DVC_ROOT, ...), the shell's that DVC runs each command through, the server's address, the times file
PER_COMMAND_PREFIXES = ("DVC_",)
PER_COMMAND = frozenset({SERVER_ENV, STAGE_TIMES_ENV, "PWD", "OLDPWD", "SHLVL", "_"})
# what the server imports before it forks: what `ld train`, `ld eval`, `ld seeds` and `ld notebook` import
PRELOAD = ("ld.engine.train", "ld.engine.evaluate", "ld.engine.seed_study", "ld.results.notebooks")
_HEADER = struct.Struct("!I")  # the length of the request's JSON
READY_S = 120.0  # how long `ld stage-times` waits for the server's imports (about 5 s on 2 idle cores)


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "AF_UNIX") and hasattr(os, "fork")


def _same(env: dict[str, str]) -> dict[str, str]:
    """``env`` without the per-command variables: what must be equal for a child to be a fresh process."""
    return {k: v for k, v in env.items() if k not in PER_COMMAND and not k.startswith(PER_COMMAND_PREFIXES)}


def _identity() -> dict[str, str]:
    import ld

    return {"python": sys.executable, "ld": str(Path(ld.__file__).resolve().parent)}


def mismatch(request: dict[str, Any], env: dict[str, str]) -> str | None:
    """Why the command of ``request`` may not run in a child of a server with environment ``env``: the first
    variable that differs (or the interpreter or ``ld`` package), None where nothing does."""
    if request.get("identity") != _identity():
        return f"another interpreter or ld package ({request.get('identity')})"
    mine, theirs = _same(env), _same(request.get("env") or {})
    for key in sorted(mine.keys() | theirs.keys()):
        if mine.get(key) != theirs.get(key):
            return f"the environment's {key}"
    return None


# -- the client: an `ld` process that DVC started ---------------------------------------------------------------


def delegate(argv: list[str], env: dict[str, str], *, started: float, imports: float) -> int | None:
    """Run ``ld ARGV`` in a child of the server that ``LD_FORK_SERVER`` names; its exit code, or None where
    the command must run in this process (no server, another environment: :func:`mismatch`). ``env``: this
    process's environment as the command would run (its profile's deterministic mode applied);
    ``started``/``imports``: this process's start (epoch seconds) and import seconds, for the child's
    ``stage-times`` line."""
    path = os.environ.get(SERVER_ENV)
    if not path or not supported():
        return None
    request = {"argv": argv, "cwd": os.getcwd(), "env": env, "identity": _identity(),
               "started": started, "imports": imports}
    payload = json.dumps(request).encode()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        conn.sendmsg([_HEADER.pack(len(payload)), payload],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
        replies = conn.makefile("r", encoding="utf-8")
        first = json.loads(replies.readline() or "{}")
    except (OSError, ValueError):
        conn.close()
        return None  # no server (not started yet, or gone): this process runs the command
    if "pid" not in first:
        conn.close()
        return None  # the server's answer: another environment (first["local"] says which variable)
    child, forwarded = int(first["pid"]), []

    def forward(signum, _frame):
        forwarded.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        last = json.loads(replies.readline() or "{}")
    finally:
        conn.close()  # the child ends itself if this process goes first (its watcher sees the socket close)
    if "signal" in last or ("exit" not in last and forwarded):  # ended by a signal: so does this process
        signum = int(last.get("signal") or forwarded[-1])
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    if "exit" not in last:
        print(f"ld: the forked process {child} of the fork server ended without an exit code (killed?)",
              file=sys.stderr)
        return 1
    return int(last["exit"])


# -- the server ------------------------------------------------------------------------------------------------


def serve(path: str | Path, main: Callable[..., int]) -> int:
    """Preload :data:`PRELOAD`, then fork a child per request on the Unix socket ``path`` that runs it with
    ``main`` (:func:`ld.cli.main`), until the process that started the server ends or SIGTERM comes. Called
    by ``ld fork-server`` (``ld``'s ``main`` has applied the profile's deterministic mode by then)."""
    import importlib

    env = dict(os.environ)  # what a client's must equal: the environment before the imports
    for module in PRELOAD:
        importlib.import_module(module)
    # what the imports did to it (OpenCV sets LD_LIBRARY_PATH and Qt's paths): each child does it to its own
    imported = {key: os.environ.get(key) for key in env.keys() | os.environ.keys()
                if env.get(key) != os.environ.get(key)}
    parent = os.getppid()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the children are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.settimeout(1.0)
    try:
        listener.bind(str(path))
        listener.listen(16)
        while os.getppid() == parent:  # the starter gone (killed): so is the server
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            _handle(conn, listener, env, imported, main)
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
    return 0


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """The request and the three descriptors (stdin, stdout, stderr) that came with its first bytes; None
    where the connection closed without a byte."""
    fds = array.array("i")
    data, ancillary, _, _ = conn.recvmsg(1 << 20, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, item in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(item[: len(item) - len(item) % fds.itemsize])
    if not data and not fds:
        return None
    if len(data) < _HEADER.size:
        raise OSError("a request without its header")
    (size,) = _HEADER.unpack(data[:_HEADER.size])
    body = data[_HEADER.size:]
    while len(body) < size:
        more = conn.recv(size - len(body))
        if not more:
            raise OSError("a request cut short")
        body += more
    return json.loads(body), list(fds)


def _handle(conn: socket.socket, listener: socket.socket, env: dict[str, str],
            imported: dict[str, str | None], main: Callable[..., int]) -> None:
    fds: list[int] = []
    try:
        received = _receive(conn)
        if received is None:
            return  # a probe (wait_ready): connected, sent nothing
        request, fds = received
        why = mismatch(request, env) if len(fds) == 3 else "the standard streams did not come"
        if why:
            conn.sendall((json.dumps({"local": why}) + "\n").encode())
            return
        if os.fork() == 0:  # the child: never returns
            listener.close()
            _child(conn, fds, {**request["env"], **imported}, request, main)
    except (OSError, ValueError) as err:
        print(f"ld fork-server: a request failed: {err}", file=sys.stderr)
    finally:
        conn.close()
        for fd in fds:
            os.close(fd)


def _child(conn: socket.socket, fds: list[int], env: dict[str, str | None], request: dict[str, Any],
           main: Callable[..., int]) -> None:
    """Become the client's ``ld`` process: its streams, directory, environment (``env``: the client's, with
    what the server's imports set in theirs: None removes) and signals; run the command
    with ``ld``'s ``main``, end as the interpreter would (threads joined, ``atexit`` run, streams flushed) and
    send the exit code. Ends itself if the client goes first."""
    code: int | signal.Signals = 1
    try:
        conn.sendall((json.dumps({"pid": os.getpid()}) + "\n").encode())  # first: the client forwards signals
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for fd, stream in ((1, sys.stdout), (2, sys.stderr)):  # buffered as a fresh interpreter's would be
            stream.reconfigure(line_buffering=fd == 2 or os.isatty(fd))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update({key: value for key, value in env.items() if value is not None})
        sys.argv = ["ld", *request["argv"]]
        threading.Thread(target=_end_with_client, args=(conn,), daemon=True).start()
        code = main(request["argv"], started=request["started"], imports=request["imports"])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if not isinstance(exit_.code, int | None):
            print(exit_.code, file=sys.stderr)
    except KeyboardInterrupt:  # the interpreter ends by SIGINT then (its parent sees the signal)
        code = signal.SIGINT
    except BaseException:  # noqa: BLE001 -- printed as the interpreter prints an uncaught exception
        import traceback

        traceback.print_exc()
    finally:
        code = _finish(code)
        ending = {"signal": int(code)} if isinstance(code, signal.Signals) else {"exit": code}
        with contextlib.suppress(OSError):
            conn.sendall((json.dumps(ending) + "\n").encode())
        os._exit(int(code))


def _finish(code: Any) -> int | signal.Signals:
    """The interpreter's exit: wait for the command's threads, run ``atexit``, flush the streams."""
    import atexit

    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code if isinstance(code, int) else 1  # a Signals is an int too


def _end_with_client(conn: socket.socket) -> None:
    """The client's end of ``conn`` closed before the exit code went: it was killed, so is the command."""
    with contextlib.suppress(OSError):
        conn.recv(1)
    os.kill(os.getpid(), signal.SIGKILL)


# -- `ld stage-times`'s side -------------------------------------------------------------------------------------


@contextlib.contextmanager
def running(env: dict[str, str], cwd: str | Path | None = None) -> Iterator[dict[str, str]]:
    """A fork server started with ``env`` in ``cwd`` (the repository whose ``params.yaml`` says whether its
    profile is pinned; default: this directory) for as long as the block runs; yields ``env`` with
    ``LD_FORK_SERVER`` set for the commands to run (``env`` as it is where the platform has no server or
    this environment's ``ld`` is not found, or where the server is not listening within ``READY_S`` seconds:
    the commands then run in their own processes)."""
    ld = Path(sys.executable).with_name("ld")
    if not supported() or not ld.is_file():
        yield env
        return
    folder = Path(tempfile.mkdtemp(prefix="ld-fork-"))
    path = folder / "socket"
    log = (folder / "server.log").open("w")
    server = subprocess.Popen([str(ld), "fork-server", str(path)], cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                              stderr=subprocess.STDOUT,  # no stage-times line of its own: its children write theirs
                              env={key: value for key, value in env.items() if key != STAGE_TIMES_ENV})
    try:
        yield {**env, SERVER_ENV: str(path)} if wait_ready(path, READY_S, server) else env
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=10)
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()
        if server.returncode not in (0, -signal.SIGTERM):
            print(f"ld stage-times: the fork server ended with {server.returncode}; its log:\n"
                  f"{(folder / 'server.log').read_text()[-2000:]}", file=sys.stderr)
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()


def wait_ready(path: str | Path, timeout: float = READY_S, server: subprocess.Popen | None = None) -> bool:
    """Whether a server listens at ``path`` within ``timeout`` seconds (false at once if ``server`` ends)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and (server is None or server.poll() is None):
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(str(path))
            return True
        time.sleep(0.1)
    return False
