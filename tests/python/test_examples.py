"""Runs every example script in examples/python/ against the session's durin server.

Each script is self-contained (its own worker on a unique task queue, client code driving the
scenario, assertions) and exits 0 after printing "<name>: OK". It is run as a subprocess with
this interpreter, with TEMPORAL_ADDRESS pointing at the test server. A `<name>_workflows.py`
next to a `<name>.py` is that script's helper module, not a script (`child_workflows.py` is a
script: there is no `child.py`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO_ROOT / "examples" / "python"


def _is_helper_module(path: Path) -> bool:
    return path.stem.endswith("_workflows") and (
        path.with_name(path.stem.removesuffix("_workflows") + ".py").exists()
    )


SCRIPTS = sorted(p for p in EXAMPLES_DIR.glob("*.py") if not _is_helper_module(p))

# Besides "<name>: OK", a line each script prints when its scenario went as shown.
EXPECTED = {
    "activity_timeouts_retries": ["charged 42 on attempt 3", "slow_report timed out (START_TO_CLOSE)"],
    "async_activity_completion": ["approved by alice", "not approved (over budget)"],
    "cancel_activity": ["workflow result: 'download cancelled'", "ACTIVITY_TASK_CANCELED"],
    "cancel_terminate_workflow": ["status CANCELED", "status TERMINATED"],
    "child_workflows": ["= 14", "child with ABANDON:   RUNNING", "child with TERMINATE: TERMINATED"],
    "continue_as_new": ["count 15 after 5 runs", "first run status CONTINUED_AS_NEW"],
    "cron": ["returned 3", "latest run status TERMINATED"],
    "dynamic_workflow": ["update set-address applied", "then ChargeCard(order-42)"],
    "heartbeats": ["attempt 2 processed items [5, 6, 7, 8, 9]", "stuck_job heartbeat timeout"],
    "namespaces": ["NAMESPACE_STATE_REGISTERED", "hello world from namespace examples-"],
    "nexus_operations": ["on attempt 2", "big charge refused: BAD_REQUEST", "standalone refund: refunded 500"],
    "payload_conversion": ["encoding binary/xor", "3 x secret widget = 21"],
    "queries": ["count_of('apple') -> 2", "query items after completion"],
    "schedules": ["3 actions taken", "delete: describe now fails with NOT_FOUND"],
    "standalone_activities": ["second start refused", "count 2, by status [('Canceled', 1), ('Completed', 1)]"],
    "signals": ["hello from SenderWorkflow", "second signal-with-start signalled the same run"],
    "timers": ["no approval within 1s", "TIMER_CANCELED"],
    "updates": ["update add(-1) rejected", "5 updates accepted"],
    "workflow_timeouts_retries": ["status: TIMED_OUT", "succeeded on attempt 3"],
    "worker_versioning": ["pinned: order shipped by v1", "auto-upgrade: inventory counted by v2"],
}

# Scripts that fail because of a known server bug: name -> reason (the exact error).
XFAIL: dict[str, str] = {}


def _param(path: Path):
    marks = []
    if path.stem in XFAIL:
        marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[path.stem]))
    return pytest.param(path, id=path.stem, marks=marks)


def test_examples_exist() -> None:
    names = {p.stem for p in SCRIPTS}
    assert names >= set(EXPECTED), f"missing examples: {sorted(set(EXPECTED) - names)}"


@pytest.mark.parametrize("script", [_param(p) for p in SCRIPTS])
def test_example(script: Path, durin_server) -> None:
    if durin_server.process.poll() is not None:
        pytest.fail(f"durin server died (exit code {durin_server.process.returncode})")
    env = dict(os.environ)
    env["TEMPORAL_ADDRESS"] = durin_server.address
    env["TEMPORAL_NAMESPACE"] = "default"
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=str(REPO_ROOT),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, f"{script.name} exited with {proc.returncode}\n{output}"
    for text in [f"{script.stem}: OK", *EXPECTED.get(script.stem, [])]:
        assert text in proc.stdout, f"{text!r} not in the output of {script.name}\n{output}"
