"""Batch operations (StartBatchOperation, DescribeBatchOperation, ListBatchOperations,
StopBatchOperation) through the official Python SDK's raw WorkflowService and the `temporal`
CLI, checked against what Temporal does: every workflow a visibility query (or a list of
executions) names is terminated, signalled…, progress is counted, a job can be stopped, one
job runs per namespace at a time, and a job survives a restart of the server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from temporalio.api.batch.v1 import BatchOperationSignal, BatchOperationTermination
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import BatchOperationState, BatchOperationType
from temporalio.api.workflowservice.v1 import (
    DescribeBatchOperationRequest,
    ListBatchOperationsRequest,
    StartBatchOperationRequest,
    StopBatchOperationRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from conftest import _durin_bin, _free_port, _stop, _wait_until_serving
from durin_workflows import WaitForeverWorkflow
from waiting import eventually


async def start_waiting(client: Client, tq: str, count: int) -> list[str]:
    """Workflows that stay running (no worker polls their queue)."""
    ids = [f"{tq}-wf-{i}" for i in range(count)]
    for wf_id in ids:
        await client.start_workflow(WaitForeverWorkflow.run, id=wf_id, task_queue=tq)
    return ids


async def describe(client: Client, job_id: str):
    return await client.workflow_service.describe_batch_operation(
        DescribeBatchOperationRequest(namespace=client.namespace, job_id=job_id)
    )


async def finished(client: Client, job_id: str):
    async def done():
        d = await describe(client, job_id)
        return d if d.state != BatchOperationState.BATCH_OPERATION_STATE_RUNNING else None

    return await eventually(done, f"batch {job_id} to finish")


async def statuses(client: Client, ids: list[str]) -> set:
    return {(await client.get_workflow_handle(i).describe()).status for i in ids}


async def test_terminate_by_query_and_signal_by_executions(client: Client, unique: str) -> None:
    tq = f"batch-{unique}"
    ids = await start_waiting(client, tq, 3)
    signal_job, terminate_job = f"signal-{unique}", f"terminate-{unique}"

    # Signal two of them, named one by one.
    await client.workflow_service.start_batch_operation(
        StartBatchOperationRequest(
            namespace=client.namespace,
            job_id=signal_job,
            reason="nudge",
            executions=[WorkflowExecution(workflow_id=i) for i in ids[:2]],
            signal_operation=BatchOperationSignal(signal="nudge", identity="ops"),
        )
    )
    done = await finished(client, signal_job)
    assert done.state == BatchOperationState.BATCH_OPERATION_STATE_COMPLETED
    assert (done.total_operation_count, done.complete_operation_count, done.failure_operation_count) == (2, 2, 0)
    assert done.operation_type == BatchOperationType.BATCH_OPERATION_TYPE_SIGNAL_WORKFLOW
    assert (done.identity, done.reason) == ("ops", "nudge")
    for i, wf_id in enumerate(ids):
        names = [
            e.workflow_execution_signaled_event_attributes.signal_name
            async for e in client.get_workflow_handle(wf_id).fetch_history_events()
            if e.HasField("workflow_execution_signaled_event_attributes")
        ]
        assert names == (["nudge"] if i < 2 else []), (wf_id, names)

    # Terminate everything on the queue, found by a visibility query.
    await client.workflow_service.start_batch_operation(
        StartBatchOperationRequest(
            namespace=client.namespace,
            job_id=terminate_job,
            reason="cleanup",
            visibility_query=f"TaskQueue = '{tq}'",
            termination_operation=BatchOperationTermination(identity="ops"),
        )
    )
    done = await finished(client, terminate_job)
    assert (done.total_operation_count, done.complete_operation_count) == (3, 3)
    assert done.query == f"TaskQueue = '{tq}'"
    assert await statuses(client, ids) == {WorkflowExecutionStatus.TERMINATED}
    last = [e async for e in client.get_workflow_handle(ids[0]).fetch_history_events()][-1]
    assert last.workflow_execution_terminated_event_attributes.reason == "cleanup"

    listed = await client.workflow_service.list_batch_operations(
        ListBatchOperationsRequest(namespace=client.namespace)
    )
    jobs = {o.job_id: o for o in listed.operation_info}
    assert {signal_job, terminate_job} <= set(jobs)
    assert jobs[terminate_job].operation_type == BatchOperationType.BATCH_OPERATION_TYPE_TERMINATE_WORKFLOW
    assert jobs[terminate_job].HasField("close_time")


async def test_bad_requests_one_job_at_a_time_and_stop(client: Client, unique: str) -> None:
    tq = f"batch-stop-{unique}"
    ids = await start_waiting(client, tq, 5)

    def request(job_id: str, **kw) -> StartBatchOperationRequest:
        fields = dict(
            namespace=client.namespace,
            job_id=job_id,
            reason="r",
            visibility_query=f"TaskQueue = '{tq}'",
            termination_operation=BatchOperationTermination(),
        )
        fields.update(kw)
        return StartBatchOperationRequest(**fields)

    for bad in (request(f"a-{unique}", reason=""), request(""), request(f"b-{unique}", visibility_query="")):
        with pytest.raises(RPCError) as err:
            await client.workflow_service.start_batch_operation(bad)
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT, bad
    with pytest.raises(RPCError) as err:
        await describe(client, f"nope-{unique}")
    assert err.value.status == RPCStatusCode.NOT_FOUND

    slow = f"slow-{unique}"
    await client.workflow_service.start_batch_operation(request(slow, max_operations_per_second=1))
    with pytest.raises(RPCError) as err:
        await client.workflow_service.start_batch_operation(request(f"second-{unique}"))
    assert err.value.status == RPCStatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(RPCError) as err:
        await client.workflow_service.start_batch_operation(request(slow))
    assert err.value.status == RPCStatusCode.ALREADY_EXISTS

    await asyncio.sleep(1.5)
    await client.workflow_service.stop_batch_operation(
        StopBatchOperationRequest(namespace=client.namespace, job_id=slow, reason="enough")
    )
    stopped = await describe(client, slow)
    assert stopped.state == BatchOperationState.BATCH_OPERATION_STATE_FAILED
    assert stopped.HasField("close_time")
    await asyncio.sleep(1.5)
    remaining = await statuses(client, ids)
    assert WorkflowExecutionStatus.RUNNING in remaining, "the stopped job went on"
    with pytest.raises(RPCError) as err:
        await client.workflow_service.stop_batch_operation(
            StopBatchOperationRequest(namespace=client.namespace, job_id=slow, reason="again")
        )
    assert err.value.status == RPCStatusCode.NOT_FOUND
    for wf_id in ids:
        try:
            await client.get_workflow_handle(wf_id).terminate("test over")
        except RPCError:
            pass


async def test_a_job_survives_a_restart(tmp_path: Path) -> None:
    """A job killed mid-way (SIGKILL) resumes when the server comes back, and finishes."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    data = tmp_path / "data"
    procs: list[subprocess.Popen] = []

    async def launch() -> Client:
        log = open(tmp_path / "durin.log", "ab")
        proc = subprocess.Popen(
            [str(_durin_bin()), "dev", "--ip", "127.0.0.1", "--port", str(port), "--data-dir", str(data),
             "--metrics-port", "0"],
            stdout=log, stderr=log, start_new_session=True,
        )
        procs.append(proc)
        await _wait_until_serving(address, proc)
        return await Client.connect(address)

    try:
        client = await launch()
        tq = f"batch-restart-{uuid.uuid4().hex[:8]}"
        ids = await start_waiting(client, tq, 6)
        await client.workflow_service.start_batch_operation(
            StartBatchOperationRequest(
                namespace="default",
                job_id="survivor",
                reason="restart",
                visibility_query=f"TaskQueue = '{tq}'",
                termination_operation=BatchOperationTermination(),
                max_operations_per_second=3,
            )
        )
        # Six at three a second: killed a second in, the job is mid-way.
        await asyncio.sleep(1.0)
        os.killpg(procs[-1].pid, signal.SIGKILL)
        procs[-1].wait(timeout=10)

        client = await launch()
        at_restart = await describe(client, "survivor")
        assert at_restart.state == BatchOperationState.BATCH_OPERATION_STATE_RUNNING, at_restart
        done = await finished(client, "survivor")
        assert done.state == BatchOperationState.BATCH_OPERATION_STATE_COMPLETED, done
        assert (done.complete_operation_count, done.failure_operation_count) == (6, 0), done
        assert await statuses(client, ids) == {WorkflowExecutionStatus.TERMINATED}
    finally:
        for proc in procs:
            _stop(proc)
