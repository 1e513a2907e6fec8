"""Pytest fixtures: one durin dev server per session, one SDK client per test.

The server binary comes from $DURIN_BIN (default: target/debug/durin, relative to
the repo root). It is started as
    durin dev --ip 127.0.0.1 --port <free port> --data-dir <tmpdir>
and killed when the session ends. Its output goes to a log file whose tail is
printed in the terminal summary when a test failed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 120

_server_log: Path | None = None


@dataclass
class DurinServer:
    address: str
    process: subprocess.Popen
    data_dir: Path
    log_path: Path


def _durin_bin() -> Path:
    raw = os.environ.get("DURIN_BIN", "target/debug/durin")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None or not path.exists():
        return "(no server log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:]) or "(server log is empty)"


async def _wait_until_serving(address: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_err: BaseException | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"durin exited with code {proc.returncode} during startup")
        try:
            await asyncio.wait_for(
                Client.connect(address, namespace="default", connect_timeout=timedelta(seconds=3)),
                timeout=5,
            )
            return
        except Exception as err:  # connection refused, not ready yet, ...
            last_err = err
        await asyncio.sleep(0.25)
    raise TimeoutError(
        f"durin did not accept SDK connections on {address} within {STARTUP_TIMEOUT_S:.0f}s; "
        f"last error: {last_err!r}"
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def launch_durin(base: Path, *extra: str) -> DurinServer:
    """Spawns `durin dev` on a free port with its data directory and log under `base` (and
    `extra` flags); the caller waits for it with _wait_until_serving and stops it with _stop."""
    binary = _durin_bin()
    data_dir = base / "data"
    data_dir.mkdir()
    log_path = base / "durin.log"
    address = f"127.0.0.1:{_free_port()}"
    cmd = [
        str(binary), "dev",
        "--ip", "127.0.0.1",
        "--port", address.rsplit(":", 1)[1],
        "--data-dir", str(data_dir),
        *extra,
    ]
    env = dict(os.environ)
    env.setdefault("RUST_BACKTRACE", "1")
    env.setdefault("NO_COLOR", "1")  # plain text in the log file
    with open(log_path, "wb") as log:
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(REPO_ROOT),
            env=env,
            start_new_session=True,  # its own process group, so teardown kills it all
        )
    return DurinServer(address=address, process=proc, data_dir=data_dir, log_path=log_path)


@pytest.fixture(scope="session")
def durin_server(tmp_path_factory: pytest.TempPathFactory):
    global _server_log
    binary = _durin_bin()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(
            f"durin binary not found or not executable at {binary} "
            "(build it with `cargo build --bin durin` or set DURIN_BIN)",
            pytrace=False,
        )

    server = launch_durin(tmp_path_factory.mktemp("durin"))
    proc, address, log_path = server.process, server.address, server.log_path
    _server_log = log_path
    startup_error: BaseException | None = None
    try:
        asyncio.run(_wait_until_serving(address, proc))
    except BaseException as err:
        startup_error = err
    if startup_error is not None:
        _stop(proc)
        pytest.fail(
            f"durin server failed to start: {startup_error}\n"
            f"--- server log ({log_path}) ---\n{_log_tail(log_path)}",
            pytrace=False,
        )

    try:
        yield server
    finally:
        _stop(proc)


@pytest.fixture
async def client(durin_server: DurinServer) -> Client:
    """A fresh SDK client (on this test's event loop) for the `default` namespace."""
    if durin_server.process.poll() is not None:
        pytest.fail(
            f"durin server died (exit code {durin_server.process.returncode})\n"
            f"{_log_tail(durin_server.log_path)}",
            pytrace=False,
        )
    return await Client.connect(
        durin_server.address, namespace="default", connect_timeout=timedelta(seconds=10)
    )


@pytest.fixture
def unique() -> str:
    """A short unique suffix for task queues and workflow ids."""
    return uuid.uuid4().hex[:12]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    failed = terminalreporter.stats.get("failed") or terminalreporter.stats.get("error")
    if failed and _server_log is not None:
        terminalreporter.section(f"durin server log (last {LOG_TAIL_LINES} lines): {_server_log}")
        terminalreporter.write_line(_log_tail(_server_log))


class Handler(str):
    """The Go program's base URL, and the lines it printed since (completions it received)."""

    lines: list[str]
    binary: Path


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory):
    """The Go Nexus program (tests/nexus-http-handler), built and listening on a free port
    as a handler and a completion receiver: its base URL."""
    go = shutil.which("go")
    assert go, "Go is needed for the Nexus HTTP handler (the test command installs it)"
    binary = tmp_path_factory.mktemp("nexus-http") / "nexus-http-handler"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=REPO_ROOT / "tests/nexus-http-handler", check=True)
    process = subprocess.Popen([str(binary), "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline().strip()
    assert line.startswith("listening on "), line
    base = Handler("http://" + line.removeprefix("listening on "))
    base.lines = []
    base.binary = binary
    threading.Thread(target=lambda: base.lines.extend(iter(process.stdout.readline, "")), daemon=True).start()
    yield base
    process.kill()
    process.wait()
