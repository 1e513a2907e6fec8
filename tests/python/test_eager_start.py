"""Eager workflow start: a client that runs a worker for the task queue asks for the first
workflow task in the start reply, and the workflow runs without a poll round trip."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from more_workflows import Greeter


async def test_the_first_workflow_task_comes_with_the_start_reply(client: Client, unique: str) -> None:
    tq = f"eager-{unique}"
    async with Worker(client, task_queue=tq, workflows=[Greeter]):
        handle = await client.start_workflow(
            Greeter.run, "eager", id=f"eager-{unique}", task_queue=tq, request_eager_start=True
        )
        assert await handle.result() == "Hello, eager!"
        # The SDK marks a handle whose start reply carried the task.
        assert getattr(handle, "__temporal_eagerly_started", False)
        events = [e async for e in handle.fetch_history_events()]
        kinds = [e.event_type for e in events]
        assert kinds[:3] == [
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        ]
        # Started by the starter itself, with the start request's identity.
        started_by = events[2].workflow_task_started_event_attributes.identity
        assert started_by == events[0].workflow_execution_started_event_attributes.identity
