"""The older listing calls and schedule counting through the official Python SDK's raw
WorkflowService: ListOpenWorkflowExecutions and ListClosedWorkflowExecutions with their
execution, type, status and time filters (answered as the visibility queries they stand for),
and CountSchedules with a query."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.enums.v1 import WorkflowExecutionStatus as Status
from temporalio.api.filter.v1 import StartTimeFilter, StatusFilter, WorkflowExecutionFilter, WorkflowTypeFilter
from temporalio.api.workflowservice.v1 import (
    CountSchedulesRequest,
    ListClosedWorkflowExecutionsRequest,
    ListOpenWorkflowExecutionsRequest,
)
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.worker import Worker

from durin_workflows import EchoWorkflow, WaitForeverWorkflow


def ts(when: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(when)
    return out


async def test_open_and_closed_listings_with_filters(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    begun = datetime.now(timezone.utc) - timedelta(seconds=1)
    async with Worker(client, task_queue=tq, workflows=[EchoWorkflow, WaitForeverWorkflow]):
        waiting = await client.start_workflow(WaitForeverWorkflow.run, id=f"open-{unique}", task_queue=tq)
        echoed = await client.execute_workflow(EchoWorkflow.run, "hi", id=f"closed-{unique}", task_queue=tq)
        assert echoed
        await waiting.terminate("listed")
        running = await client.start_workflow(WaitForeverWorkflow.run, id=f"still-{unique}", task_queue=tq)
        ns = client.namespace
        svc = client.workflow_service

        async def open_ids(**kw) -> set[str]:
            resp = await svc.list_open_workflow_executions(ListOpenWorkflowExecutionsRequest(namespace=ns, **kw))
            return {e.execution.workflow_id for e in resp.executions}

        async def closed(**kw) -> dict[str, int]:
            resp = await svc.list_closed_workflow_executions(ListClosedWorkflowExecutionsRequest(namespace=ns, **kw))
            return {e.execution.workflow_id: e.status for e in resp.executions}

        mine = StartTimeFilter(earliest_time=ts(begun))
        assert f"still-{unique}" in await open_ids(start_time_filter=mine)
        assert await open_ids(
            execution_filter=WorkflowExecutionFilter(workflow_id=f"still-{unique}")
        ) == {f"still-{unique}"}
        assert f"open-{unique}" not in await open_ids(start_time_filter=mine)
        assert await open_ids(
            execution_filter=WorkflowExecutionFilter(workflow_id=f"still-{unique}", run_id=running.result_run_id)
        ) == {f"still-{unique}"}

        closed_now = await closed(start_time_filter=mine)
        assert closed_now.get(f"closed-{unique}") == Status.WORKFLOW_EXECUTION_STATUS_COMPLETED
        assert closed_now.get(f"open-{unique}") == Status.WORKFLOW_EXECUTION_STATUS_TERMINATED
        assert f"still-{unique}" not in closed_now
        terminated = await closed(
            start_time_filter=mine, status_filter=StatusFilter(status=Status.WORKFLOW_EXECUTION_STATUS_TERMINATED)
        )
        assert f"open-{unique}" in terminated and f"closed-{unique}" not in terminated
        by_type = await closed(start_time_filter=mine, type_filter=WorkflowTypeFilter(name="EchoWorkflow"))
        assert f"closed-{unique}" in by_type and f"open-{unique}" not in by_type
        # Closed before the window: nothing.
        later = StartTimeFilter(earliest_time=ts(datetime.now(timezone.utc) + timedelta(hours=1)))
        assert not await closed(start_time_filter=later)
        await running.terminate("test over")


async def test_count_schedules_with_a_query(client: Client, unique: str) -> None:
    team = SearchAttributeKey.for_keyword("CustomKeywordField")
    ids = [f"sched-{unique}-{i}" for i in range(3)]
    for i, sid in enumerate(ids):
        await client.create_schedule(
            sid,
            Schedule(
                action=ScheduleActionStartWorkflow("EchoWorkflow", "x", id=f"wf-{sid}", task_queue="nobody"),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
                state=ScheduleState(paused=True),
            ),
            search_attributes=TypedSearchAttributes([SearchAttributePair(team, unique if i < 2 else "other")]),
        )
    try:
        count = await client.workflow_service.count_schedules(
            CountSchedulesRequest(namespace=client.namespace, query=f"CustomKeywordField = '{unique}'")
        )
        assert count.count == 2
        everything = await client.workflow_service.count_schedules(CountSchedulesRequest(namespace=client.namespace))
        assert everything.count >= 3
    finally:
        for sid in ids:
            await client.get_schedule_handle(sid).delete()
