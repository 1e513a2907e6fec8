"""The official Temporal Python SDK (temporalio) against a durin dev server.

Each test uses its own task queue and workflow ids, so tests don't see each other's
work on the one shared server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Iterable
from datetime import timedelta

import pytest
from temporalio.api.command.v1 import Command
from temporalio.api.common.v1 import WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import CommandType, EventType, TaskQueueKind
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    PollWorkflowTaskQueueRequest,
    RespondActivityTaskCompletedRequest,
    RespondWorkflowTaskCompletedRequest,
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from durin_workflows import (
    EchoWorkflow,
    GreetingWorkflow,
    WaitForeverWorkflow,
    compose_greeting,
)

# Upper bound on one test, so a server that stops answering fails the test instead of
# hanging the run.
TEST_TIMEOUT_S = 120
RPC_TIMEOUT = timedelta(seconds=15)
IDENTITY = "durin-python-tests"


async def wait_for_query_state(handle: WorkflowHandle, want: str, timeout_s: float = 30) -> None:
    """Polls the `state` query until it returns `want`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            last = await handle.query(GreetingWorkflow.state)
        except Exception as err:  # e.g. the first workflow task has not completed yet
            last = err
        if last == want:
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"query `state` never returned {want!r} within {timeout_s}s; last: {last!r}")


async def event_types(handle: WorkflowHandle) -> list[int]:
    history = await handle.fetch_history()
    return [e.event_type for e in history.events]


async def expect_rpc_error(
    call: Awaitable[object],
    codes: Iterable[RPCStatusCode],
    words: Iterable[str],
    what: str,
) -> RPCError:
    """Awaits `call`, which must fail with an RPCError whose status is one of `codes`
    and whose message is non-empty and contains one of `words` (case-insensitive)."""
    codes = set(codes)
    words = tuple(words)
    try:
        resp = await call
    except RPCError as err:
        names = sorted(c.name for c in codes)
        assert err.status in codes, (
            f"{what}: expected status {names}, got {err.status.name}: {err.message!r}"
        )
        assert err.message and err.message.strip(), f"{what}: error message is empty"
        low = err.message.lower()
        assert any(w in low for w in words), (
            f"{what}: error message {err.message!r} names none of {list(words)}"
        )
        return err
    pytest.fail(f"{what}: expected an RPC error, the call succeeded with {resp!r}")


# --------------------------------------------------------------------------- (a)


async def test_workflow_with_activity_signal_and_query(client: Client, unique: str) -> None:
    task_queue = f"py-greet-{unique}"
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[GreetingWorkflow],
            activities=[compose_greeting],
        ):
            handle = await client.start_workflow(
                GreetingWorkflow.run,
                "Durin",
                id=f"py-greet-{unique}",
                task_queue=task_queue,
                execution_timeout=timedelta(minutes=2),
            )
            # Before the signal: the activity has run, the workflow waits.
            await wait_for_query_state(handle, "waiting:Hello, Durin!:")

            await handle.signal(GreetingWorkflow.finish, "go")
            # After the signal: the workflow saw it and waits for the release.
            await wait_for_query_state(handle, "signalled:Hello, Durin!:go")

            await handle.signal(GreetingWorkflow.release)
            result = await asyncio.wait_for(handle.result(), 30)
            assert result == "Hello, Durin! signal=go"

            desc = await handle.describe()
            assert desc.status == WorkflowExecutionStatus.COMPLETED
            assert desc.id == f"py-greet-{unique}"
            assert desc.workflow_type == "GreetingWorkflow"
            assert desc.task_queue == task_queue

            events = await event_types(handle)
            assert events[0] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
            assert events[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
            assert events.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == 1
            assert events.count(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) == 1
            assert events.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) == 2


async def test_query_completed_workflow(client: Client, unique: str) -> None:
    """A query on a closed workflow is answered by replaying its history on a worker."""
    task_queue = f"py-closed-query-{unique}"
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[GreetingWorkflow],
            activities=[compose_greeting],
        ):
            handle = await client.start_workflow(
                GreetingWorkflow.run,
                "closed",
                id=f"py-closed-query-{unique}",
                task_queue=task_queue,
            )
            await wait_for_query_state(handle, "waiting:Hello, closed!:")
            await handle.signal(GreetingWorkflow.finish, "x")
            await handle.signal(GreetingWorkflow.release)
            assert await asyncio.wait_for(handle.result(), 30) == "Hello, closed! signal=x"
            assert await handle.query(GreetingWorkflow.state) == "done:Hello, closed!:x"


# --------------------------------------------------------------------------- (b)


async def test_bad_input_is_rejected_and_server_keeps_serving(client: Client, unique: str) -> None:
    svc = client.workflow_service
    task_queue = f"py-bad-input-{unique}"
    bad_ns = f"no-such-namespace-{unique}"
    invalid = [RPCStatusCode.INVALID_ARGUMENT]
    not_found = [RPCStatusCode.NOT_FOUND]

    def start_request(**overrides) -> StartWorkflowExecutionRequest:
        fields = dict(
            namespace="default",
            workflow_id=f"py-bad-input-{unique}-{uuid.uuid4().hex[:6]}",
            workflow_type=WorkflowType(name="EchoWorkflow"),
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            identity=IDENTITY,
            request_id=str(uuid.uuid4()),
        )
        fields.update(overrides)
        return StartWorkflowExecutionRequest(**fields)

    async with asyncio.timeout(TEST_TIMEOUT_S):
        # StartWorkflowExecution without a workflow id.
        await expect_rpc_error(
            svc.start_workflow_execution(start_request(workflow_id=""), timeout=RPC_TIMEOUT),
            invalid, ["workflow"], "StartWorkflowExecution with empty workflow_id",
        )
        # StartWorkflowExecution in a namespace that does not exist.
        await expect_rpc_error(
            svc.start_workflow_execution(start_request(namespace=bad_ns), timeout=RPC_TIMEOUT),
            not_found, ["namespace"], "StartWorkflowExecution in unknown namespace",
        )
        # Completing tasks with tokens that are not tokens.
        await expect_rpc_error(
            svc.respond_activity_task_completed(
                RespondActivityTaskCompletedRequest(
                    namespace="default", task_token=b"garbage", identity=IDENTITY
                ),
                timeout=RPC_TIMEOUT,
            ),
            invalid + not_found, ["token"], "RespondActivityTaskCompleted with garbage token",
        )
        await expect_rpc_error(
            svc.respond_workflow_task_completed(
                RespondWorkflowTaskCompletedRequest(
                    namespace="default", task_token=b"garbage", identity=IDENTITY
                ),
                timeout=RPC_TIMEOUT,
            ),
            invalid + not_found, ["token"], "RespondWorkflowTaskCompleted with garbage token",
        )

        # A real workflow task, polled by hand, answered with a command lacking attributes.
        wf_id = f"py-bad-command-{unique}"
        started = await svc.start_workflow_execution(
            start_request(workflow_id=wf_id), timeout=RPC_TIMEOUT
        )
        assert started.run_id, "StartWorkflowExecution returned no run_id"
        task = await svc.poll_workflow_task_queue(
            PollWorkflowTaskQueueRequest(
                namespace="default",
                task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                identity=IDENTITY,
            ),
            timeout=timedelta(seconds=30),
        )
        assert task.task_token, "PollWorkflowTaskQueue returned no task for a started workflow"
        assert task.workflow_execution.workflow_id == wf_id
        assert task.workflow_execution.run_id == started.run_id
        assert task.workflow_type.name == "EchoWorkflow"
        await expect_rpc_error(
            svc.respond_workflow_task_completed(
                RespondWorkflowTaskCompletedRequest(
                    namespace="default",
                    task_token=task.task_token,
                    identity=IDENTITY,
                    commands=[
                        Command(command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK)
                    ],
                ),
                timeout=RPC_TIMEOUT,
            ),
            invalid, ["attribute"],
            "RespondWorkflowTaskCompleted with SCHEDULE_ACTIVITY_TASK lacking attributes",
        )

        # Signal to a workflow that does not exist.
        await expect_rpc_error(
            svc.signal_workflow_execution(
                SignalWorkflowExecutionRequest(
                    namespace="default",
                    workflow_execution=WorkflowExecution(workflow_id=f"no-such-workflow-{unique}"),
                    signal_name="nobody-listens",
                    identity=IDENTITY,
                    request_id=str(uuid.uuid4()),
                ),
                timeout=RPC_TIMEOUT,
            ),
            not_found, ["workflow"], "SignalWorkflowExecution to unknown workflow",
        )
        # Describe a namespace that does not exist.
        await expect_rpc_error(
            svc.describe_namespace(DescribeNamespaceRequest(namespace=bad_ns), timeout=RPC_TIMEOUT),
            not_found, ["namespace"], "DescribeNamespace of unknown namespace",
        )

        # The server still serves: the default namespace is there ...
        ns = await svc.describe_namespace(
            DescribeNamespaceRequest(namespace="default"), timeout=RPC_TIMEOUT
        )
        assert ns.namespace_info.name == "default"

        # ... the workflow that got the bad command is still there and can be ended ...
        bad_handle = client.get_workflow_handle(wf_id, run_id=started.run_id)
        await bad_handle.terminate(reason="test cleanup")
        assert (await bad_handle.describe()).status == WorkflowExecutionStatus.TERMINATED

        # ... and a normal workflow runs to completion.
        ok_queue = f"py-after-bad-input-{unique}"
        async with Worker(client, task_queue=ok_queue, workflows=[EchoWorkflow]):
            result = await asyncio.wait_for(
                client.execute_workflow(
                    EchoWorkflow.run, "still-alive", id=f"py-after-bad-{unique}", task_queue=ok_queue
                ),
                30,
            )
        assert result == "echo:still-alive"


# --------------------------------------------------------------------------- (c)


async def test_second_start_of_running_workflow_id_fails(client: Client, unique: str) -> None:
    task_queue = f"py-dup-{unique}"  # no worker: the workflow stays running
    wf_id = f"py-dup-{unique}"
    async with asyncio.timeout(TEST_TIMEOUT_S):
        handle = await client.start_workflow(
            WaitForeverWorkflow.run, id=wf_id, task_queue=task_queue
        )
        try:
            with pytest.raises(WorkflowAlreadyStartedError) as excinfo:
                await client.start_workflow(
                    WaitForeverWorkflow.run, id=wf_id, task_queue=task_queue
                )
            err = excinfo.value
            assert err.workflow_id == wf_id
            assert err.run_id == handle.first_execution_run_id, (
                "WorkflowExecutionAlreadyStartedFailure should carry the running run's id"
            )
            # The first run is untouched.
            desc = await handle.describe()
            assert desc.status == WorkflowExecutionStatus.RUNNING
            assert desc.run_id == handle.first_execution_run_id
        finally:
            await handle.terminate(reason="test cleanup")
