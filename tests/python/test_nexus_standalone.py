"""Standalone Nexus operations with the official Python SDK: a client starts an operation on
an endpoint with no workflow of its own (StartNexusOperationExecution), and watches, lists,
cancels and terminates it. The handler gets a link back to the operation; a workflow-run
handler's workflow completes it through its callback; id reuse and conflict policies, timeouts,
namespace isolation and a SIGKILL of the server are covered.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from pathlib import Path

import nexusrpc
import pytest
from temporalio.api.enums.v1 import CallbackState, EventType, NexusOperationCancellationState
from temporalio.api.workflowservice.v1 import DescribeNexusOperationExecutionRequest
from temporalio.client import Client, NexusOperationFailureError, WorkflowExecutionStatus
from temporalio.common import (
    NexusOperationExecutionStatus,
    NexusOperationIDConflictPolicy,
    NexusOperationIDReusePolicy,
    PendingNexusOperationExecutionState,
)
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    NexusOperationAlreadyStartedError,
    TerminatedError,
    TimeoutError,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from nexus_standalone_workflows import (
    AppraisalCaller,
    Entry,
    Ledger,
    LedgerHandler,
    SettlementWorkflow,
    appraise,
    inbound_links,
)
from conftest import _stop, _wait_until_serving, launch_durin
from test_nexus_async import handler_namespace
from test_nexus_endpoints import launch_again
from test_nexus_operations import create_endpoint

TIMEOUT = timedelta(seconds=60)


def ledger_worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[SettlementWorkflow],
                  activities=[appraise], nexus_service_handlers=[LedgerHandler()])


async def wait_for_workflow(client: Client, workflow_id: str):
    """The handler's workflow, once a run of it is running."""
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(300):
        try:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                return handle
        except RPCError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} never started")


def causes(error: BaseException) -> list[BaseException]:
    chain = []
    while error.__cause__ is not None:
        error = error.__cause__
        chain.append(error)
    return chain


async def test_a_sync_operation_is_run_described_listed_and_counted(client: Client, unique: str) -> None:
    handlers = await handler_namespace(client, unique)
    tq = f"ledger-{unique}"
    endpoint = await create_endpoint(client, handlers.namespace, tq)
    ledger = client.create_nexus_client(service=Ledger, endpoint=endpoint)
    op_id = f"post-{unique}"
    async with ledger_worker(handlers, tq):
        handle = await ledger.start_operation(
            Ledger.post, Entry(op_id, 5), id=op_id, schedule_to_close_timeout=TIMEOUT, summary="posting",
        )
        assert await handle.result() == f"posted {op_id}: 5"

        # The handler was called with a link to the operation itself.
        assert inbound_links[op_id] == [(
            "temporal.api.common.v1.Link.NexusOperation",
            f"temporal:///namespaces/default/nexus-operations/{op_id}/{handle.run_id}/details",
        )]

        desc = await handle.describe()
        assert desc.status == NexusOperationExecutionStatus.COMPLETED
        assert desc.state == PendingNexusOperationExecutionState.UNSPECIFIED
        assert (desc.endpoint, desc.service, desc.operation) == (endpoint, "Ledger", "post")
        assert desc.attempt == 1 and desc.last_attempt_failure is None
        assert await desc.static_summary() == "posting"

        # A handler error that is not retried fails the operation with it.
        refused = await ledger.start_operation(
            Ledger.post, Entry(f"{op_id}-neg", -1), id=f"{op_id}-neg", schedule_to_close_timeout=TIMEOUT,
        )
        with pytest.raises(NexusOperationFailureError) as err:
            await refused.result()
        assert isinstance(err.value.__cause__, nexusrpc.HandlerError), causes(err.value)
        assert err.value.__cause__.type == nexusrpc.HandlerErrorType.BAD_REQUEST

    listed = [o.operation_id async for o in client.list_nexus_operations(f'Endpoint = "{endpoint}"')]
    assert sorted(listed) == sorted([op_id, f"{op_id}-neg"])
    assert (await client.count_nexus_operations(f"`OperationId` = '{op_id}'")).count == 1
    failed = await client.count_nexus_operations(f'Endpoint = "{endpoint}" AND ExecutionStatus = "Failed"')
    assert failed.count == 1
    # Operations are not workflows, and another namespace sees none of them.
    assert (await client.count_workflows(f'WorkflowId = "{op_id}"')).count == 0
    with pytest.raises(RPCError) as missing:
        await handlers.get_nexus_operation_handle(op_id).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    assert (await handlers.count_nexus_operations(f'Endpoint = "{endpoint}"')).count == 0


async def test_a_workflow_run_operation_completes_through_its_callback(client: Client, unique: str) -> None:
    handlers = await handler_namespace(client, unique)
    tq = f"ledger-{unique}"
    endpoint = await create_endpoint(client, handlers.namespace, tq)
    ledger = client.create_nexus_client(service=Ledger, endpoint=endpoint)
    op_id = f"settle-{unique}"
    async with ledger_worker(handlers, tq):
        handle = await ledger.start_operation(Ledger.settle, Entry(op_id), id=op_id, schedule_to_close_timeout=TIMEOUT)
        settlement = await wait_for_workflow(handlers, f"settle-{op_id}")

        # The handler's workflow holds a callback linking to the operation ...
        started = (await settlement.fetch_history()).events[0]
        [callback] = started.workflow_execution_started_event_attributes.completion_callbacks
        [back] = callback.links
        assert (back.nexus_operation.namespace, back.nexus_operation.operation_id,
                back.nexus_operation.run_id) == ("default", op_id, handle.run_id), back

        # ... and the operation links to the workflow's start, with the handler's token.
        async def started_operation():
            for _ in range(100):
                desc = await handle.describe()
                if desc.state == PendingNexusOperationExecutionState.STARTED:
                    return desc
                await asyncio.sleep(0.05)
            raise AssertionError("the operation never started")
        desc = await started_operation()
        assert desc.status == NexusOperationExecutionStatus.RUNNING and desc.operation_token
        [link] = desc.raw_description.links
        assert link.workflow_event.workflow_id == settlement.id, link
        assert link.workflow_event.event_ref.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED

        await settlement.signal(SettlementWorkflow.go)
        assert await handle.result() == f"settled {op_id}"

        # A failing handler workflow fails the operation with its failure as the cause.
        failing = await ledger.start_operation(
            Ledger.settle, Entry(f"{op_id}-neg", -1), id=f"{op_id}-neg", schedule_to_close_timeout=TIMEOUT,
        )
        await (await wait_for_workflow(handlers, f"settle-{op_id}-neg")).signal(SettlementWorkflow.go)
        with pytest.raises(NexusOperationFailureError) as err:
            await failing.result()
        chain = causes(err.value)
        assert any(isinstance(e, ApplicationError) and e.type == "Ledger" for e in chain), chain
        assert (await failing.describe()).status == NexusOperationExecutionStatus.FAILED


async def test_an_activity_backed_operation_ends_when_its_activity_closes(client: Client, unique: str) -> None:
    handlers = await handler_namespace(client, unique)
    tq = f"ledger-{unique}"
    endpoint = await create_endpoint(client, handlers.namespace, tq)
    ledger = client.create_nexus_client(service=Ledger, endpoint=endpoint)
    op_id = f"a-{unique}"
    async with ledger_worker(handlers, tq), Worker(client, task_queue=tq, workflows=[AppraisalCaller]):
        handle = await ledger.start_operation(Ledger.appraise, Entry(op_id, 7), id=op_id, schedule_to_close_timeout=TIMEOUT)
        assert await handle.result() == f"appraised {op_id}: 7"

        # The activity kept the callback (with the handler's token and the link to the
        # operation) and reports it delivered.
        appraisal = await handlers.get_activity_handle(f"appraise-{op_id}").describe()
        [callback] = appraisal.raw_callbacks
        assert callback.info.state == CallbackState.CALLBACK_STATE_SUCCEEDED, callback
        assert callback.info.callback.nexus.header["nexus-operation-token"], callback
        [back] = callback.info.callback.links
        assert (back.nexus_operation.operation_id, back.nexus_operation.run_id) == (op_id, handle.run_id)
        assert list(appraisal.raw_info.links) == []

        # The activity's failure comes back under the completion's OperationError wrapper.
        failing = await ledger.start_operation(
            Ledger.appraise, Entry(f"{op_id}-neg", -1), id=f"{op_id}-neg", schedule_to_close_timeout=TIMEOUT,
        )
        with pytest.raises(NexusOperationFailureError) as err:
            await failing.result()
        wrapper = err.value.__cause__
        assert isinstance(wrapper, ApplicationError) and wrapper.type == "OperationError", causes(err.value)
        assert "nexus operation completed unsuccessfully" in str(wrapper)
        assert isinstance(wrapper.__cause__, ApplicationError) and wrapper.__cause__.type == "Appraisal"
        assert wrapper.__cause__.__cause__ is None

        # A workflow caller gets the result too, its Started event linking to the activity.
        caller = await client.start_workflow(
            AppraisalCaller.run, args=[endpoint, Entry(f"w-{unique}", 3)], id=f"appraiser-{unique}",
            task_queue=tq, execution_timeout=TIMEOUT,
        )
        assert await caller.result() == f"appraised w-{unique}: 3"
        events = (await caller.fetch_history()).events
        [started] = [e for e in events if e.event_type == EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED]
        [link] = started.links
        assert link.activity.activity_id == f"appraise-w-{unique}", link
        assert link.activity.namespace == handlers.namespace, link


async def test_cancellation_reaches_the_handler_and_termination_does_not(client: Client, unique: str) -> None:
    handlers = await handler_namespace(client, unique)
    tq = f"ledger-{unique}"
    endpoint = await create_endpoint(client, handlers.namespace, tq)
    ledger = client.create_nexus_client(service=Ledger, endpoint=endpoint)
    async with ledger_worker(handlers, tq):
        cancelled = await ledger.start_operation(
            Ledger.settle, Entry(f"c-{unique}"), id=f"c-{unique}", schedule_to_close_timeout=TIMEOUT,
        )
        await cancelled.cancel(reason="customer withdrew")
        with pytest.raises(NexusOperationFailureError) as err:
            await cancelled.result()
        assert isinstance(err.value.__cause__, CancelledError), causes(err.value)
        settlement = handlers.get_workflow_handle(f"settle-c-{unique}")
        assert (await settlement.describe()).status == WorkflowExecutionStatus.CANCELED
        raw = await client.workflow_service.describe_nexus_operation_execution(
            DescribeNexusOperationExecutionRequest(namespace="default", operation_id=f"c-{unique}"))
        assert raw.info.cancellation_info.reason == "customer withdrew"
        assert raw.info.cancellation_info.state == NexusOperationCancellationState.NEXUS_OPERATION_CANCELLATION_STATE_SUCCEEDED
        with pytest.raises(RPCError) as again:
            await cancelled.cancel(reason="twice")
        assert again.value.status == RPCStatusCode.FAILED_PRECONDITION

        terminated = await ledger.start_operation(
            Ledger.settle, Entry(f"t-{unique}"), id=f"t-{unique}", schedule_to_close_timeout=TIMEOUT,
        )
        settlement = await wait_for_workflow(handlers, f"settle-t-{unique}")
        await terminated.terminate(reason="closing the books")
        with pytest.raises(NexusOperationFailureError) as err:
            await terminated.result()
        assert isinstance(err.value.__cause__, TerminatedError), causes(err.value)
        assert str(err.value.__cause__) == "closing the books"
        # The handler is not told: its workflow still runs.
        assert (await settlement.describe()).status == WorkflowExecutionStatus.RUNNING
        await settlement.terminate()


async def test_id_conflict_and_reuse_policies(client: Client, unique: str) -> None:
    handlers = await handler_namespace(client, unique)
    tq = f"ledger-{unique}"
    endpoint = await create_endpoint(client, handlers.namespace, tq)
    ledger = client.create_nexus_client(service=Ledger, endpoint=endpoint)
    op_id = f"p-{unique}"

    async def start(reuse=NexusOperationIDReusePolicy.ALLOW_DUPLICATE,
                    conflict=NexusOperationIDConflictPolicy.FAIL):
        return await ledger.start_operation(
            Ledger.settle, Entry(op_id), id=op_id, schedule_to_close_timeout=TIMEOUT,
            id_reuse_policy=reuse, id_conflict_policy=conflict,
        )

    async with ledger_worker(handlers, tq):
        first = await start()
        settlement = await wait_for_workflow(handlers, f"settle-{op_id}")
        with pytest.raises(NexusOperationAlreadyStartedError):
            await start()
        joined = await start(conflict=NexusOperationIDConflictPolicy.USE_EXISTING)
        assert joined.run_id == first.run_id
        await first.terminate(reason="start over")
        await settlement.terminate()
        with pytest.raises(NexusOperationAlreadyStartedError):
            await start(reuse=NexusOperationIDReusePolicy.REJECT_DUPLICATE)
        # A terminated run counts as unsuccessful.
        second = await start(reuse=NexusOperationIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
        assert second.run_id != first.run_id
        await (await wait_for_workflow(handlers, f"settle-{op_id}")).signal(SettlementWorkflow.go)
        # A handle without a run id follows the latest run.
        assert await client.get_nexus_operation_handle(op_id).result() == f"settled {op_id}"
        with pytest.raises(NexusOperationAlreadyStartedError):
            await start(reuse=NexusOperationIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)


async def test_an_operation_no_handler_takes_times_out(client: Client, unique: str) -> None:
    endpoint = await create_endpoint(client, "default", f"nobody-{unique}")
    ledger = client.create_nexus_client(service=Ledger, endpoint=endpoint)
    handle = await ledger.start_operation(
        Ledger.post, Entry(unique), id=f"late-{unique}", schedule_to_start_timeout=timedelta(seconds=2),
    )
    with pytest.raises(NexusOperationFailureError) as err:
        await handle.result()
    assert isinstance(err.value.__cause__, TimeoutError), causes(err.value)
    desc = await handle.describe()
    assert desc.status == NexusOperationExecutionStatus.TIMED_OUT
    with pytest.raises(RPCError) as unknown:
        await client.create_nexus_client(service=Ledger, endpoint=f"missing-{unique}").start_operation(
            Ledger.post, Entry(unique), id=f"nowhere-{unique}")
    assert unknown.value.status == RPCStatusCode.NOT_FOUND


async def test_an_operation_survives_a_sigkill(tmp_path: Path, unique: str) -> None:
    """The handler's workflow is waiting when the server is killed with SIGKILL; after a
    restart on the same data, it finishes and the operation has its result."""
    server = launch_durin(tmp_path)
    try:
        await _wait_until_serving(server.address, server.process)
        client = await Client.connect(server.address)
        tq = f"ledger-{unique}"
        endpoint = await create_endpoint(client, "default", tq)
        ledger = client.create_nexus_client(service=Ledger, endpoint=endpoint)
        op_id = f"k-{unique}"
        async with ledger_worker(client, tq):
            await ledger.start_operation(Ledger.settle, Entry(op_id), id=op_id, schedule_to_close_timeout=TIMEOUT)
            await wait_for_workflow(client, f"settle-{op_id}")
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        restarted = launch_again(tmp_path, list(server.process.args))
        try:
            await _wait_until_serving(server.address, restarted)
            client = await Client.connect(server.address)
            async with ledger_worker(client, tq):
                await client.get_workflow_handle(f"settle-{op_id}").signal(SettlementWorkflow.go)
                assert await client.get_nexus_operation_handle(op_id).result() == f"settled {op_id}"
        finally:
            _stop(restarted)
    finally:
        _stop(server.process)
