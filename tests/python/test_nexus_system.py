"""Temporal's system Nexus endpoint (`__temporal_system`), which the server handles itself:
a workflow's signal-with-start of another workflow (the Python SDK's workflow-side
`signal_with_start_workflow`) starts it with the signal the first time and signals it the
second, each recorded as a Nexus operation completed with the response, and both histories
link to each other.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from nexus_async_workflows import InboxWorkflow, PosterWorkflow


async def test_a_workflow_signal_with_starts_another_through_the_system_endpoint(
    client: Client, unique: str
) -> None:
    tq = f"inbox-{unique}"
    inbox_id = f"inbox-{unique}"
    async with Worker(client, task_queue=tq, workflows=[InboxWorkflow, PosterWorkflow]):
        posted = []
        for message in ["hello", "bye"]:
            posted.append(await client.execute_workflow(
                PosterWorkflow.run, args=[inbox_id, tq, message], id=f"poster-{message}-{unique}",
                task_queue=tq, execution_timeout=timedelta(seconds=30),
            ))
        inbox = client.get_workflow_handle(inbox_id)
        assert await inbox.result() == "alice: hello, bye"
    run_id = (await inbox.describe()).run_id
    assert posted == [f"{inbox_id}/{run_id}"] * 2, posted

    # Each poster's history: the operation on the system endpoint, completed with a link to
    # its signal.
    for message in ["hello", "bye"]:
        events = (await client.get_workflow_handle(f"poster-{message}-{unique}").fetch_history()).events
        scheduled = [e for e in events if e.event_type == EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED]
        completed = [e for e in events if e.event_type == EventType.EVENT_TYPE_NEXUS_OPERATION_COMPLETED]
        assert len(scheduled) == 1 and len(completed) == 1, [e.event_type for e in events]
        attrs = scheduled[0].nexus_operation_scheduled_event_attributes
        assert attrs.endpoint == "__temporal_system" and attrs.endpoint_id == "", attrs
        [back] = completed[0].links
        assert back.workflow_event.workflow_id == inbox_id, back
        assert back.workflow_event.request_id_ref.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED

    # The inbox's signals link to the posters' scheduled events.
    signaled = [e for e in (await inbox.fetch_history()).events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
    assert [e.links[0].workflow_event.workflow_id for e in signaled] == [
        f"poster-hello-{unique}", f"poster-bye-{unique}"
    ], signaled
    assert all(e.links[0].workflow_event.event_ref.event_type
               == EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED for e in signaled)
