"""The fork server of `ld stage-times` (ld/fork_server.py): an `ld` command handed to it runs in a forked child with
the client's streams, directory, environment and exit code, ends with its client, and any other environment
runs in its own process. (The smoke `dvc repro` of tests/e2e/test_pipeline.py runs through it, its results
compared byte for byte with the committed ones.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ld.fork_server import SERVER_ENV, mismatch, running, supported, wait_ready

pytestmark = pytest.mark.skipif(not supported(), reason="the fork server needs Linux (Unix sockets, fork)")
REPO = Path(__file__).resolve().parents[1]
LD = str(Path(sys.executable).with_name("ld"))
PARAMS = ["--params", str(REPO / "params.yaml"), "--profile", "smoke"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server as `ld stage-times` starts it, from this repository's params.yaml (smoke: pinned)."""
    env = {**os.environ, "LD_STAGE_TIMES": str(tmp_path_factory.mktemp("times") / "times.jsonl")}
    env.pop(SERVER_ENV, None)
    with running(env) as served:
        assert wait_ready(served[SERVER_ENV]), "the fork server did not start"
        yield served


def _server_pid(env: dict[str, str]) -> int:
    out = subprocess.run(["pgrep", "-f", f"fork-server {env[SERVER_ENV]}"], capture_output=True, text=True)
    return int(out.stdout.split()[0])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _lines(env):
    return [json.loads(line) for line in Path(env["LD_STAGE_TIMES"]).read_text().splitlines()]


def test_a_command_runs_in_a_child_with_the_clients_streams_directory_and_exit_code(server, tmp_path):
    out = subprocess.run([LD, *PARAMS, "data", "prepare", "data"], cwd=tmp_path,
                         env={**server, "DVC_STAGE": "data"}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["train"]["images"] == 48  # its stdout is the client's
    assert (tmp_path / "data" / "annotations").is_dir()  # its directory too
    line = _lines(server)[-1]
    assert line["ppid"] == _server_pid(server) and line["stage"] == "data" and line["exit"] == 0
    assert line["imports"] < 1.5  # the client's start-up: the child imported nothing
    direct = tmp_path / "direct"
    subprocess.run([LD, *PARAMS, "data", "prepare", str(direct)], cwd=REPO, check=True,
                   capture_output=True, env={k: v for k, v in server.items() if k != SERVER_ENV})
    for path in sorted((tmp_path / "data").rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (direct / path.relative_to(tmp_path / "data")).read_bytes(), path
    bad = subprocess.run([LD, *PARAMS, "eval", "missing.py", "missing.pth", "--out", "m.json"],
                         cwd=tmp_path, env=server, capture_output=True, text=True)
    assert bad.returncode == 2 and "ld eval: error: config missing.py not found" in bad.stderr
    assert _lines(server)[-1]["ppid"] == _server_pid(server)


def test_another_environment_runs_in_its_own_process(server, tmp_path):
    for extra, forked in (({"LD_TEST_OTHER": "1"}, False), ({"MPLBACKEND": "pdf"}, False),
                          ({"OMP_NUM_THREADS": "1"}, True)):  # the last: the deterministic mode sets it to 2
        subprocess.run([LD, *PARAMS, "data", "prepare", "d"], cwd=tmp_path, check=True,
                       capture_output=True, env={**server, **extra})
        assert (_lines(server)[-1]["ppid"] == _server_pid(server)) is forked, extra
    request = {"identity": None, "env": {}}
    assert mismatch(request, {}).startswith("another interpreter")


def test_the_child_ends_with_its_client_and_a_signal_is_passed_on(server, tmp_path):
    """A training interrupted: a client killed outright takes its child with it; SIGTERM to a client reaches
    the child, and the client ends by it as a process of its own would."""
    subprocess.run([LD, *PARAMS, "data", "prepare", "data"], cwd=tmp_path, env=server, check=True,
                   capture_output=True)
    server_pid = _server_pid(server)
    for how in (signal.SIGKILL, signal.SIGTERM):
        before = set(_children(server_pid))
        client = subprocess.Popen([LD, *PARAMS, "train", str(REPO / "pipelines/configs/gfl_r18_1x.py"), "--out",
                                   f"m_{how}", "--data", "data", "--work-root", "work"],
                                  cwd=tmp_path, env=server, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 60
        while not set(_children(server_pid)) - before and time.monotonic() < end:
            time.sleep(0.1)
        (child,) = set(_children(server_pid)) - before
        time.sleep(1.0)  # training
        assert client.poll() is None
        client.send_signal(how)
        assert client.wait(timeout=30) == -how
        end = time.monotonic() + 30
        while child in _children(server_pid) and time.monotonic() < end:
            time.sleep(0.1)
        assert child not in _children(server_pid), f"the child outlived its client ({how!r})"
        assert not (tmp_path / f"m_{how}" / "model.pth").exists()
