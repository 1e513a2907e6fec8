"""Eager activity execution: an activity scheduled on the workflow's own task queue with
`request_eager_execution` is started at once and returned in the RespondWorkflowTaskCompleted
response, so the worker runs it without polling for it.

Driven both through the raw WorkflowService (what exactly is returned, and when the server
declines) and through the official Python SDK's worker, which asks for it by default.
"""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.api.command.v1 import Command
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    RespondActivityTaskCompletedRequest,
    RespondWorkflowTaskCompletedRequest,
)
from temporalio.client import Client
from temporalio.worker import Worker

from conftest import _free_port, _stop, _wait_until_serving, launch_durin
from durin_workflows import GreetOnceWorkflow, compose_greeting
from test_protocol import (
    IDENTITY,
    RPC_TIMEOUT,
    payload,
    poll,
    poll_activity,
    schedule_activity,
    start,
    types,
)

E = EventType


def eager_activity(activity_id: str, tq: str) -> Command:
    return schedule_activity(activity_id, tq, 30, input_text=f"in-{activity_id}", eager=True)


async def pending_states(client: Client, wf_id: str) -> dict[str, int]:
    resp = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace="default", execution=WorkflowExecution(workflow_id=wf_id)),
        timeout=RPC_TIMEOUT,
    )
    return {p.activity_id: p.state for p in resp.pending_activities}


async def test_eager_activity_comes_back_started_with_the_completion(client: Client, unique: str) -> None:
    tq, other_tq, wf_id = f"tq-{unique}", f"other-{unique}", f"eager-{unique}"
    run_id = await start(client, wf_id, tq)
    task = await poll(client, tq)
    resp = await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(
            namespace="default",
            task_token=task.task_token,
            # The second is on another queue: its worker may not be this one, so it is queued.
            commands=[eager_activity("here", tq), eager_activity("there", other_tq)],
            identity=IDENTITY,
        ),
        timeout=RPC_TIMEOUT,
    )
    assert [t.activity_id for t in resp.activity_tasks] == ["here"]
    act = resp.activity_tasks[0]
    assert act.task_token and act.attempt == 1
    assert act.workflow_execution.workflow_id == wf_id and act.workflow_execution.run_id == run_id
    assert act.workflow_type.name == "RawWorkflow"
    assert act.activity_type.name == "RawActivity"
    assert act.input.payloads[0].data == b'"in-here"'
    assert act.started_time.seconds > 0 and act.start_to_close_timeout.seconds == 30
    assert await pending_states(client, wf_id) == {
        "here": PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
        "there": PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED,
    }
    # The eager one is not also in its queue: the only task there is the other queue's.
    queued = await poll_activity(client, other_tq)
    assert queued.activity_id == "there"

    for token, result in [(act.task_token, "eager"), (queued.task_token, "queued")]:
        await client.workflow_service.respond_activity_task_completed(
            RespondActivityTaskCompletedRequest(namespace="default", task_token=token, result=payload(result)),
            timeout=RPC_TIMEOUT,
        )
    task = await poll(client, tq)
    events = task.history.events
    done = {
        e.activity_task_completed_event_attributes.scheduled_event_id: e.activity_task_completed_event_attributes.result.payloads[0].data
        for e in events
        if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    }
    scheduled = {
        e.activity_task_scheduled_event_attributes.activity_id: e.event_id
        for e in events
        if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    assert done == {scheduled["here"]: b'"eager"', scheduled["there"]: b'"queued"'}
    assert types(events).count(E.EVENT_TYPE_ACTIVITY_TASK_STARTED) == 2


async def test_the_sdk_worker_runs_its_activity_eagerly(tmp_path: Path) -> None:
    metrics_port = _free_port()
    server = launch_durin(tmp_path, "--metrics-port", str(metrics_port))
    try:
        await _wait_until_serving(server.address, server.process)
        client = await Client.connect(server.address)
        tq = f"eager-sdk-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=tq, workflows=[GreetOnceWorkflow], activities=[compose_greeting]):
            for i in range(3):
                result = await client.execute_workflow(
                    GreetOnceWorkflow.run, f"eager {i}", id=f"{tq}-{i}", task_queue=tq,
                    execution_timeout=timedelta(seconds=60),
                )
                assert result == f"Hello, eager {i}!"
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        )
        series = f'activity_eager_execution{{namespace="default",taskqueue="{tq}"}} '
        counts = [line[len(series):] for line in text.splitlines() if line.startswith(series)]
        assert counts == ["3"], [line for line in text.splitlines() if "eager" in line]
    finally:
        _stop(server.process)
