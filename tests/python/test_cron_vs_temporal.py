"""Workflow cron strings give the same next run on Durin as on the real Temporal dev server.

Both servers get the same cron strings at (nearly) the same moment; each records in the
first event of the new run when its first run starts (the start time plus
`first_workflow_task_backoff`). No worker is needed: the run waits for its first cron time.
The Temporal dev server is the `temporal` CLI from the venv (scripts/python-env installs it).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPORAL = REPO_ROOT / ".venv" / "bin" / "temporal"

# Each: classic cron fields, names, ranges, steps and lists; the day-of-month OR
# day-of-week rule; Sunday as 0 and 7; descriptors; @every; a time zone.
CRON_STRINGS = [
    "* * * * *",
    "*/7 * * * *",
    "5-59/20 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "0 0 1 * MON",
    "0 0 13 * FRI",
    "15 10 * * 1-5",
    "0 0 * * 0",
    "0 0 * * 7",  # refused by both: Sunday is 0
    "0 0 * * 5-7",
    "0 12 1,15 * *",
    "0 0 29 2 *",
    "0 9 1 JAN,JUL *",
    "0 0 ? * SUN",
    "0 0 31 * *",
    "@hourly",
    "@daily",
    "@midnight",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
    "@every 90m",
    "@every 36h",
    "CRON_TZ=America/New_York 0 9 * * *",
    "CRON_TZ=Asia/Kolkata 30 0 * * *",
    "TZ=Europe/Berlin 0 3 * * SAT",
    # Refused by both.
    "0 0 * *",
    "61 * * * *",
    "@fortnightly",
    "CRON_TZ=Mars/Olympus 0 0 * * *",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def temporal_dev_server(tmp_path):
    if not TEMPORAL.exists():
        pytest.fail(f"the temporal CLI is missing at {TEMPORAL}: run scripts/python-env", pytrace=False)
    port = _free_port()
    proc = subprocess.Popen(
        [str(TEMPORAL), "server", "start-dev", "--headless", "--port", str(port),
         "--log-level", "error", "--db-filename", str(tmp_path / "temporal.db")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                client = await Client.connect(address, connect_timeout=timedelta(seconds=2))
                break
            except Exception:
                await asyncio.sleep(0.25)
        else:
            pytest.fail("the Temporal dev server did not start", pytrace=False)
        yield client
    finally:
        proc.kill()
        proc.wait(timeout=10)


async def _first_run_time(client: Client, workflow_id: str, cron: str) -> datetime:
    handle = await client.start_workflow(
        "NobodyRunsThis", id=workflow_id, task_queue="cron-comparison", cron_schedule=cron
    )
    try:
        async for event in handle.fetch_history_events():
            assert event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
            started = event.event_time.ToDatetime(tzinfo=timezone.utc)
            backoff = event.workflow_execution_started_event_attributes.first_workflow_task_backoff
            return started + backoff.ToTimedelta()
        raise AssertionError("no history")
    finally:
        await handle.terminate("compared")


async def test_cron_next_run_matches_the_temporal_dev_server(client: Client, temporal_dev_server: Client, unique: str):
    disagreements = []
    for i, cron in enumerate(CRON_STRINGS):
        for attempt in range(2):
            workflow_id = f"cron-{i}-{attempt}-{unique}"
            durin, temporal = await asyncio.gather(
                _first_run_time(client, workflow_id, cron),
                _first_run_time(temporal_dev_server, workflow_id, cron),
                return_exceptions=True,
            )
            if isinstance(durin, BaseException) or isinstance(temporal, BaseException):
                break
            # Temporal rounds the wait up to whole seconds (its run starts up to 1 s after the
            # cron time); the two starts are milliseconds apart.
            same = abs(temporal.timestamp() - durin.timestamp()) < 1.5
            # A cron time passing between the two starts is the one honest difference: again.
            if same or attempt == 1:
                break
        if isinstance(durin, BaseException) or isinstance(temporal, BaseException):
            # Refused by both is agreement; refused by one is not.
            if not (isinstance(durin, BaseException) and isinstance(temporal, BaseException)):
                disagreements.append(f"{cron!r}: Durin {durin!r}, Temporal {temporal!r}")
            continue
        if not same:
            disagreements.append(f"{cron!r}: Durin {durin}, Temporal {temporal}")
    assert not disagreements, "\n".join(disagreements)
