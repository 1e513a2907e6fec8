"""The Python SDK's own test harness starts Durin as its dev server.

`WorkflowEnvironment.start_local(dev_server_existing_path=<durin>)` launches the binary with
the arguments it passes to Temporal's CLI (`server start-dev --port … --namespace default
--ip 127.0.0.1 --log-format pretty --log-level warn --dynamic-config-value … --headless`, and
`--search-attribute NAME=TYPE` for the attributes given), waits for the gRPC port and stops
it with SIGKILL. Nothing here changes what the SDK sends.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from conftest import _durin_bin
from durin_workflows import CountdownWorkflow

TEAM = SearchAttributeKey.for_keyword("DurinTeam")
ATTEMPTS = SearchAttributeKey.for_int("DurinAttempts")


def _ephemeral_stores() -> set[str]:
    base = Path(os.environ.get("TMPDIR", "/tmp"))
    return {p.name for p in base.glob("durin-ephemeral-*")}


async def test_start_local_runs_durin_as_the_dev_server() -> None:
    before = _ephemeral_stores()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(_durin_bin()),
        search_attributes=[TEAM, ATTEMPTS],
        dev_server_extra_args=[
            "--dynamic-config-value",
            "limit.historyCount.suggestContinueAsNew=12",
            "--dynamic-config-value",
            "history.someKnobDurinDoesNotHave=3",
        ],
    )
    try:
        created = _ephemeral_stores() - before
        assert len(created) == 1, f"one ephemeral store for the server: {created}"
        task_queue = f"start-local-{uuid.uuid4()}"
        async with Worker(env.client, task_queue=task_queue, workflows=[CountdownWorkflow]):
            handle = await env.client.start_workflow(
                CountdownWorkflow.run,
                100,
                id=f"countdown-{uuid.uuid4()}",
                task_queue=task_queue,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(TEAM, "payments"), SearchAttributePair(ATTEMPTS, 3)]
                ),
            )
            timers = await handle.result()
        # The dynamic config value was honoured: suggested once the history reached 12
        # events (each timer adds about four), not Durin's default of 4096.
        assert 0 < timers < 10, timers
        described = await handle.describe()
        assert described.typed_search_attributes.get(TEAM) == "payments"
        assert described.typed_search_attributes.get(ATTEMPTS) == 3
    finally:
        await env.shutdown()


async def test_start_dev_refuses_a_malformed_dynamic_config_value() -> None:
    with pytest.raises(Exception):
        await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(_durin_bin()),
            dev_server_extra_args=["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=lots"],
        )
