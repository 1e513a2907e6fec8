"""Wire-level rules of the workflow-task protocol, driven through the raw WorkflowService the
way an SDK worker would, so each rule is exercised deterministically:

- the exact `UnhandledCommand` rejection when a signal arrives during a closing task;
- transient workflow-task retries (attempt > 1 events are shipped but not persisted);
- queries attached to a pending workflow task and answered in its completion;
- history paging, forwards and newest first, and the close-event long poll that clients use
  to await results;
- workflow-task and activity start-to-close timeouts, and activities addressed by id.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.command.v1 import (
    Command,
    CompleteWorkflowExecutionCommandAttributes,
    ScheduleActivityTaskCommandAttributes,
    StartTimerCommandAttributes,
)
from temporalio.api.common.v1 import ActivityType, Payload, Payloads, RetryPolicy, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import (
    CommandType,
    EventType,
    HistoryEventFilterType,
    PendingActivityState,
    QueryResultType,
    RetryState,
    TaskQueueKind,
    TimeoutType,
    WorkflowTaskFailedCause,
)
from temporalio.api.query.v1 import WorkflowQuery, WorkflowQueryResult
from temporalio.api.taskqueue.v1 import StickyExecutionAttributes, TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    PollActivityTaskQueueRequest,
    RecordActivityTaskHeartbeatByIdRequest,
    RespondActivityTaskCompletedByIdRequest,
    RespondActivityTaskCompletedRequest,
    GetWorkflowExecutionHistoryRequest,
    GetWorkflowExecutionHistoryReverseRequest,
    PollWorkflowTaskQueueRequest,
    QueryWorkflowRequest,
    RespondWorkflowTaskCompletedRequest,
    RespondWorkflowTaskFailedRequest,
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

RPC_TIMEOUT = timedelta(seconds=15)
IDENTITY = "durin-protocol-tests"


def payload(text: str) -> Payloads:
    return Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())])


async def start(client: Client, wf_id: str, tq: str, task_timeout_s: int = 10) -> str:
    resp = await client.workflow_service.start_workflow_execution(
        StartWorkflowExecutionRequest(
            namespace="default",
            workflow_id=wf_id,
            workflow_type=WorkflowType(name="RawWorkflow"),
            task_queue=TaskQueue(name=tq),
            request_id=f"{wf_id}-start",
            workflow_task_timeout={"seconds": task_timeout_s},
        ),
        timeout=RPC_TIMEOUT,
    )
    return resp.run_id


async def poll(client: Client, tq: str):
    task = await client.workflow_service.poll_workflow_task_queue(
        PollWorkflowTaskQueueRequest(namespace="default", task_queue=TaskQueue(name=tq), identity=IDENTITY),
        timeout=timedelta(seconds=70),
    )
    assert task.task_token, "expected a workflow task"
    return task


async def history(client: Client, wf_id: str, run_id: str = "", **kwargs):
    return await client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(
            namespace="default", execution=WorkflowExecution(workflow_id=wf_id, run_id=run_id), **kwargs
        ),
        timeout=timedelta(seconds=70),
    )


def complete_command(result: str) -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        complete_workflow_execution_command_attributes=CompleteWorkflowExecutionCommandAttributes(result=payload(result)),
    )


def types(events) -> list[int]:
    return [e.event_type for e in events]


E = EventType


async def test_signal_during_closing_task_is_unhandled_command(client: Client, unique: str) -> None:
    tq, wf_id = f"tq-{unique}", f"unhandled-{unique}"
    await start(client, wf_id, tq)
    task = await poll(client, tq)
    await client.workflow_service.signal_workflow_execution(
        SignalWorkflowExecutionRequest(
            namespace="default",
            workflow_execution=WorkflowExecution(workflow_id=wf_id),
            signal_name="late",
            input=payload("hello"),
        ),
        timeout=RPC_TIMEOUT,
    )
    with pytest.raises(RPCError) as err:
        await client.workflow_service.respond_workflow_task_completed(
            RespondWorkflowTaskCompletedRequest(namespace="default", task_token=task.task_token, commands=[complete_command("done")], identity=IDENTITY),
            timeout=RPC_TIMEOUT,
        )
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert err.value.message == "UnhandledCommand"

    # The next task carries the failure, the signal and a fresh attempt-1 task, in that order.
    task = await poll(client, tq)
    assert task.attempt == 1
    assert types(task.history.events) == [
        E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        E.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    ]
    failed = task.history.events[3].workflow_task_failed_event_attributes
    assert failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
    assert task.previous_started_event_id == 0
    assert [e.event_id for e in task.history.events] == list(range(1, 8))

    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(namespace="default", task_token=task.task_token, commands=[complete_command("done")], identity=IDENTITY),
        timeout=RPC_TIMEOUT,
    )
    closed = await history(
        client, wf_id, wait_new_event=True, history_event_filter_type=HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT
    )
    assert types(closed.history.events) == [E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]
    assert closed.history.events[0].event_id == 9
    assert not closed.next_page_token


async def test_transient_workflow_task_retries_leave_no_events_until_success(client: Client, unique: str) -> None:
    tq, wf_id = f"tq-{unique}", f"transient-{unique}"
    await start(client, wf_id, tq)
    task = await poll(client, tq)
    assert task.attempt == 1
    await client.workflow_service.respond_workflow_task_failed(
        RespondWorkflowTaskFailedRequest(namespace="default",
            task_token=task.task_token,
            cause=WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
            identity=IDENTITY,
        ),
        timeout=RPC_TIMEOUT,
    )
    # Attempt 2 is transient: shipped as events 5 and 6, not persisted.
    task = await poll(client, tq)
    assert task.attempt == 2
    assert types(task.history.events)[-3:] == [
        E.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    ]
    assert [e.event_id for e in task.history.events] == [1, 2, 3, 4, 5, 6]
    assert task.history.events[4].workflow_task_scheduled_event_attributes.attempt == 2
    stored = await history(client, wf_id)
    assert len(stored.history.events) == 4

    # Failing the transient attempt writes nothing; attempt 3 reuses the same ids.
    await client.workflow_service.respond_workflow_task_failed(
        RespondWorkflowTaskFailedRequest(namespace="default",
            task_token=task.task_token,
            cause=WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
            identity=IDENTITY,
        ),
        timeout=RPC_TIMEOUT,
    )
    task = await poll(client, tq)
    assert task.attempt == 3
    assert [e.event_id for e in task.history.events] == [1, 2, 3, 4, 5, 6]
    assert len((await history(client, wf_id)).history.events) == 4

    # Success makes the attempt's events real.
    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(namespace="default", task_token=task.task_token, commands=[complete_command("ok")], identity=IDENTITY),
        timeout=RPC_TIMEOUT,
    )
    final = await history(client, wf_id)
    assert types(final.history.events)[4:] == [
        E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    ]
    assert final.history.events[4].workflow_task_scheduled_event_attributes.attempt == 3


async def test_query_rides_on_pending_workflow_task(client: Client, unique: str) -> None:
    tq, wf_id = f"tq-{unique}", f"query-{unique}"
    await start(client, wf_id, tq)
    # The first workflow task is pending, so the query must travel with it.
    query = asyncio.create_task(
        client.workflow_service.query_workflow(
            QueryWorkflowRequest(
                namespace="default",
                execution=WorkflowExecution(workflow_id=wf_id),
                query=WorkflowQuery(query_type="status"),
            ),
            timeout=RPC_TIMEOUT,
        )
    )
    await asyncio.sleep(0.3)
    task = await poll(client, tq)
    assert len(task.queries) == 1
    (query_id, carried), = task.queries.items()
    assert carried.query_type == "status"
    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(namespace="default",
            task_token=task.task_token,
            identity=IDENTITY,
            query_results={
                query_id: WorkflowQueryResult(result_type=QueryResultType.QUERY_RESULT_TYPE_ANSWERED, answer=payload("busy"))
            },
        ),
        timeout=RPC_TIMEOUT,
    )
    answer = await query
    assert answer.query_result.payloads[0].data == b'"busy"'


async def test_history_pages_and_close_event_long_poll(client: Client, unique: str) -> None:
    tq, wf_id = f"tq-{unique}", f"paging-{unique}"
    run_id = await start(client, wf_id, tq)
    for n in range(5):
        await client.workflow_service.signal_workflow_execution(
            SignalWorkflowExecutionRequest(
                namespace="default", workflow_execution=WorkflowExecution(workflow_id=wf_id), signal_name=f"s{n}"
            ),
            timeout=RPC_TIMEOUT,
        )
    # 7 events: started, task scheduled, 5 signals; read two at a time.
    ids, token = [], b""
    while True:
        page = await history(client, wf_id, run_id, maximum_page_size=2, next_page_token=token)
        assert len(page.history.events) <= 2
        ids += [e.event_id for e in page.history.events]
        token = page.next_page_token
        if not token:
            break
    assert ids == list(range(1, 8))
    # Newest first, as the Web UI reads it, three at a time.
    ids, token = [], b""
    while True:
        page = await client.workflow_service.get_workflow_execution_history_reverse(
            GetWorkflowExecutionHistoryReverseRequest(
                namespace="default",
                execution=WorkflowExecution(workflow_id=wf_id, run_id=run_id),
                maximum_page_size=3,
                next_page_token=token,
            ),
            timeout=RPC_TIMEOUT,
        )
        assert len(page.history.events) <= 3
        ids += [e.event_id for e in page.history.events]
        token = page.next_page_token
        if not token:
            break
    assert ids == list(range(7, 0, -1))

    # A close-event long poll returns as soon as the run closes.
    waiter = asyncio.create_task(
        history(
            client,
            wf_id,
            run_id,
            wait_new_event=True,
            history_event_filter_type=HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
        )
    )
    await asyncio.sleep(0.3)
    assert not waiter.done()
    task = await poll(client, tq)
    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(namespace="default", task_token=task.task_token, commands=[complete_command("paged")], identity=IDENTITY),
        timeout=RPC_TIMEOUT,
    )
    closed = await asyncio.wait_for(waiter, 10)
    assert types(closed.history.events) == [E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]
    result = closed.history.events[0].workflow_execution_completed_event_attributes.result
    assert result.payloads[0].data == b'"paged"'

    # Completing again with the spent token is NOT_FOUND.
    with pytest.raises(RPCError) as err:
        await client.workflow_service.respond_workflow_task_completed(
            RespondWorkflowTaskCompletedRequest(namespace="default", task_token=task.task_token, commands=[complete_command("again")], identity=IDENTITY),
            timeout=RPC_TIMEOUT,
        )
    assert err.value.status == RPCStatusCode.NOT_FOUND


async def test_workflow_task_timeout_retries_the_task(client: Client, unique: str) -> None:
    tq, wf_id = f"tq-{unique}", f"wft-timeout-{unique}"
    await start(client, wf_id, tq, task_timeout_s=1)
    first = await poll(client, tq)
    assert first.attempt == 1
    # Never answer: the start-to-close timeout must hand the task out again as attempt 2.
    second = await poll(client, tq)
    assert second.attempt == 2
    assert types(second.history.events) == [
        E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
        E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    ]
    # The stale token of attempt 1 no longer completes anything.
    with pytest.raises(RPCError) as err:
        await client.workflow_service.respond_workflow_task_completed(
            RespondWorkflowTaskCompletedRequest(namespace="default", task_token=first.task_token, commands=[complete_command("late")], identity=IDENTITY),
            timeout=RPC_TIMEOUT,
        )
    assert err.value.status == RPCStatusCode.NOT_FOUND
    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(namespace="default", task_token=second.task_token, commands=[complete_command("on time")], identity=IDENTITY),
        timeout=RPC_TIMEOUT,
    )
    final = await history(client, wf_id)
    assert types(final.history.events)[-1] == E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


def schedule_activity(
    activity_id: str, tq: str, start_to_close_s: int, max_attempts: int = 0, input_text: str = "in", eager: bool = False
) -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
        schedule_activity_task_command_attributes=ScheduleActivityTaskCommandAttributes(
            activity_id=activity_id,
            activity_type=ActivityType(name="RawActivity"),
            task_queue=TaskQueue(name=tq),
            input=payload(input_text),
            start_to_close_timeout={"seconds": start_to_close_s},
            retry_policy=RetryPolicy(maximum_attempts=max_attempts) if max_attempts else None,
            request_eager_execution=eager,
        ),
    )


async def poll_activity(client: Client, tq: str):
    task = await client.workflow_service.poll_activity_task_queue(
        PollActivityTaskQueueRequest(namespace="default", task_queue=TaskQueue(name=tq), identity=IDENTITY),
        timeout=timedelta(seconds=70),
    )
    assert task.task_token, "expected an activity task"
    return task


async def describe(client: Client, wf_id: str):
    return await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace="default", execution=WorkflowExecution(workflow_id=wf_id)),
        timeout=RPC_TIMEOUT,
    )


async def test_activity_by_id_heartbeat_describe_and_completion(client: Client, unique: str) -> None:
    tq, wf_id = f"tq-{unique}", f"by-id-{unique}"
    await start(client, wf_id, tq)
    task = await poll(client, tq)
    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(namespace="default",
            task_token=task.task_token, commands=[schedule_activity("a1", tq, 30)], identity=IDENTITY
        ),
        timeout=RPC_TIMEOUT,
    )
    pending = (await describe(client, wf_id)).pending_activities
    assert [(p.activity_id, p.state) for p in pending] == [("a1", PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED)]

    act = await poll_activity(client, tq)
    assert act.activity_id == "a1" and act.attempt == 1
    assert act.input.payloads[0].data == b'"in"'
    assert act.retry_policy.backoff_coefficient == 2.0  # server-filled default policy
    hb = await client.workflow_service.record_activity_task_heartbeat_by_id(
        RecordActivityTaskHeartbeatByIdRequest(
            namespace="default", workflow_id=wf_id, activity_id="a1", details=payload("halfway")
        ),
        timeout=RPC_TIMEOUT,
    )
    assert not hb.cancel_requested
    pending = (await describe(client, wf_id)).pending_activities
    assert pending[0].state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    assert pending[0].heartbeat_details.payloads[0].data == b'"halfway"'

    await client.workflow_service.respond_activity_task_completed_by_id(
        RespondActivityTaskCompletedByIdRequest(
            namespace="default", workflow_id=wf_id, activity_id="a1", result=payload("by id"), identity="async-completer"
        ),
        timeout=RPC_TIMEOUT,
    )
    task = await poll(client, tq)
    events = task.history.events
    assert types(events)[4:] == [
        E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        E.EVENT_TYPE_ACTIVITY_TASK_STARTED,
        E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    ]
    completed = events[6].activity_task_completed_event_attributes
    assert (completed.scheduled_event_id, completed.started_event_id) == (5, 6)
    assert completed.result.payloads[0].data == b'"by id"'
    assert task.previous_started_event_id == 3
    assert not (await describe(client, wf_id)).pending_activities
    # The original task token is spent.
    with pytest.raises(RPCError) as err:
        await client.workflow_service.respond_activity_task_completed(
            RespondActivityTaskCompletedRequest(namespace="default", task_token=act.task_token, result=payload("twice")), timeout=RPC_TIMEOUT
        )
    assert err.value.status == RPCStatusCode.NOT_FOUND


async def test_activity_start_to_close_timeout_without_retries(client: Client, unique: str) -> None:
    tq, wf_id = f"tq-{unique}", f"act-timeout-{unique}"
    await start(client, wf_id, tq)
    task = await poll(client, tq)
    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(namespace="default",
            task_token=task.task_token, commands=[schedule_activity("slow", tq, 1, max_attempts=1)], identity=IDENTITY
        ),
        timeout=RPC_TIMEOUT,
    )
    act = await poll_activity(client, tq)
    assert act.start_to_close_timeout.seconds == 1
    # Never answer the activity: after one second the workflow hears of the timeout.
    task = await poll(client, tq)
    events = task.history.events
    assert types(events)[5:7] == [E.EVENT_TYPE_ACTIVITY_TASK_STARTED, E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT]
    timed_out = events[6].activity_task_timed_out_event_attributes
    assert timed_out.retry_state == RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED
    assert timed_out.failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
    assert events[5].activity_task_started_event_attributes.attempt == 1


async def test_sticky_queue_gets_partial_history_and_falls_back_when_unpolled(client: Client, unique: str) -> None:
    tq, sticky, wf_id = f"tq-{unique}", f"sticky-{unique}", f"sticky-{unique}"
    await start(client, wf_id, tq)
    sticky_attrs = StickyExecutionAttributes(
        worker_task_queue=TaskQueue(name=sticky, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY, normal_name=tq),
        schedule_to_start_timeout={"seconds": 1},
    )

    async def poll_sticky():
        return await client.workflow_service.poll_workflow_task_queue(
            PollWorkflowTaskQueueRequest(
                namespace="default",
                task_queue=TaskQueue(name=sticky, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY, normal_name=tq),
                identity=IDENTITY,
            ),
            timeout=timedelta(seconds=70),
        )

    # A sticky poller is waiting, so the next task goes to it with only the new events.
    sticky_poll = asyncio.create_task(poll_sticky())
    task = await poll(client, tq)
    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(namespace="default", task_token=task.task_token, identity=IDENTITY, sticky_attributes=sticky_attrs),
        timeout=RPC_TIMEOUT,
    )
    await client.workflow_service.signal_workflow_execution(
        SignalWorkflowExecutionRequest(namespace="default", workflow_execution=WorkflowExecution(workflow_id=wf_id), signal_name="one"),
        timeout=RPC_TIMEOUT,
    )
    task = await asyncio.wait_for(sticky_poll, 10)
    assert [e.event_id for e in task.history.events] == [4, 5, 6, 7]
    assert types(task.history.events) == [
        E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    ]
    assert task.previous_started_event_id == 3
    assert task.history.events[2].workflow_task_scheduled_event_attributes.task_queue.name == sticky

    # Nobody polls the sticky queue now: after its 1 s schedule-to-start timeout the task
    # moves to the normal queue, with full history.
    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(namespace="default", task_token=task.task_token, identity=IDENTITY, sticky_attributes=sticky_attrs),
        timeout=RPC_TIMEOUT,
    )
    await client.workflow_service.signal_workflow_execution(
        SignalWorkflowExecutionRequest(namespace="default", workflow_execution=WorkflowExecution(workflow_id=wf_id), signal_name="two"),
        timeout=RPC_TIMEOUT,
    )
    task = await poll(client, tq)
    assert task.history.events[0].event_id == 1
    assert types(task.history.events)[-4:] == [
        E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
        E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    ]
    timed_out = task.history.events[-3].workflow_task_timed_out_event_attributes
    assert timed_out.timeout_type == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START
    assert task.attempt == 1


async def test_oversized_payloads_are_refused(client: Client, unique: str) -> None:
    tq, wf_id = f"tq-{unique}", f"big-{unique}"
    big = Payloads(payloads=[Payload(metadata={"encoding": b"binary/plain"}, data=b"x" * (3 * 1024 * 1024))])
    with pytest.raises(RPCError) as err:
        await client.workflow_service.start_workflow_execution(
            StartWorkflowExecutionRequest(
                namespace="default",
                workflow_id=wf_id,
                workflow_type=WorkflowType(name="RawWorkflow"),
                task_queue=TaskQueue(name=tq),
                input=big,
            ),
            timeout=RPC_TIMEOUT,
        )
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert "limited to" in err.value.message

    # A workflow that tries to complete with an oversized result is terminated, as in Temporal.
    await start(client, wf_id, tq)
    task = await poll(client, tq)
    command = Command(
        command_type=CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        complete_workflow_execution_command_attributes=CompleteWorkflowExecutionCommandAttributes(result=big),
    )
    with pytest.raises(RPCError) as err:
        await client.workflow_service.respond_workflow_task_completed(
            RespondWorkflowTaskCompletedRequest(namespace="default", task_token=task.task_token, commands=[command], identity=IDENTITY),
            timeout=RPC_TIMEOUT,
        )
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    final = await history(client, wf_id)
    assert types(final.history.events)[-2:] == [
        E.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    ]
    assert "limited to" in final.history.events[-1].workflow_execution_terminated_event_attributes.reason


def start_timer(timer_id: str, seconds: int) -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_START_TIMER,
        start_timer_command_attributes=StartTimerCommandAttributes(
            timer_id=timer_id, start_to_fire_timeout={"seconds": seconds}
        ),
    )


async def test_a_zero_timer_fires_at_once_and_a_negative_one_fails_the_task(client: Client, unique: str) -> None:
    # `workflow.sleep(0)` and a condition with a zero timeout send zero timers; Temporal accepts
    # them and only refuses negative ones.
    tq, wf_id = f"tq-{unique}", f"zero-timer-{unique}"
    await start(client, wf_id, tq)
    first = await poll(client, tq)
    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(namespace="default", task_token=first.task_token, commands=[start_timer("zero", 0)], identity=IDENTITY),
        timeout=RPC_TIMEOUT,
    )
    fired = await asyncio.wait_for(poll(client, tq), 20)
    assert E.EVENT_TYPE_TIMER_FIRED in types(fired.history.events)
    with pytest.raises(RPCError) as refused:
        await client.workflow_service.respond_workflow_task_completed(
            RespondWorkflowTaskCompletedRequest(namespace="default", task_token=fired.task_token, commands=[start_timer("negative", -1)], identity=IDENTITY),
            timeout=RPC_TIMEOUT,
        )
    assert refused.value.status == RPCStatusCode.INVALID_ARGUMENT
    failed = (await history(client, wf_id)).history.events[-1]
    assert failed.event_type == E.EVENT_TYPE_WORKFLOW_TASK_FAILED
    assert failed.workflow_task_failed_event_attributes.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_START_TIMER_ATTRIBUTES
    assert "negative" in failed.workflow_task_failed_event_attributes.failure.message
