"""What Temporal promises around workflow ids, run ids and the metadata users attach, checked
through the official Python SDK and the raw WorkflowService (each rule from Temporal's own
server behaviour; the Go SDK and the SDKs' test suites trip on every one of them):

- run ids are version-7 UUIDs; start responses carry the chain's first run id;
- id reuse and conflict policy pairs Temporal refuses are refused, with its words; a closed
  run that the reuse policy protects is named as finished, not running;
- a retried signal-with-start delivers its signal once; signal-with-start refuses the
  conflict policy Fail;
- cancelling a closed run is a no-op; cancel and terminate check `first_execution_run_id`;
- summary and details given at start are on the started event and in describe; describe
  always carries memo and search attributes, and the extended info;
- a child started with a reused id that its reuse policy refuses fails as already started.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.api.common.v1 import WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import (
    EventType,
    WorkflowIdConflictPolicy as ConflictPolicy,
    WorkflowIdReusePolicy as ReusePolicy,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    RequestCancelWorkflowExecutionRequest,
    SignalWithStartWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from more_workflows import Child, ReusesAChildId

RPC_TIMEOUT = timedelta(seconds=15)


def _start(unique: str, workflow_id: str, **kwargs) -> StartWorkflowExecutionRequest:
    return StartWorkflowExecutionRequest(
        namespace="default",
        workflow_id=workflow_id,
        workflow_type=WorkflowType(name="NobodyRunsThis"),
        task_queue=TaskQueue(name=f"ids-{unique}"),
        request_id=str(uuid.uuid4()),
        **kwargs,
    )


async def test_run_ids_are_uuid_v7_and_responses_name_the_first_run(client: Client, unique: str) -> None:
    svc = client.workflow_service
    resp = await svc.start_workflow_execution(_start(unique, f"v7-{unique}"), timeout=RPC_TIMEOUT)
    assert uuid.UUID(resp.run_id).version == 7
    assert resp.first_execution_run_id == resp.run_id
    # The same request again: the same run, and the same chain.
    again = await svc.start_workflow_execution(
        _start(unique, f"v7-{unique}", workflow_id_conflict_policy=ConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING),
        timeout=RPC_TIMEOUT,
    )
    assert (again.run_id, again.first_execution_run_id, again.started) == (resp.run_id, resp.run_id, False)


@pytest.mark.parametrize(
    "reuse,conflict,said",
    [
        (
            ReusePolicy.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING,
            ConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
            "WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING cannot be used together with a WorkflowIDConflictPolicy",
        ),
        (
            ReusePolicy.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
            ConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING,
            "WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE cannot be used together with WorkflowIdConflictPolicy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING",
        ),
    ],
)
async def test_policy_pairs_temporal_refuses_are_refused(client: Client, unique: str, reuse, conflict, said) -> None:
    with pytest.raises(RPCError) as err:
        await client.workflow_service.start_workflow_execution(
            _start(unique, f"pair-{unique}", workflow_id_reuse_policy=reuse, workflow_id_conflict_policy=conflict),
            timeout=RPC_TIMEOUT,
        )
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert said in err.value.message


async def test_a_finished_run_is_named_finished(client: Client, unique: str) -> None:
    svc = client.workflow_service
    wid = f"finished-{unique}"
    await svc.start_workflow_execution(_start(unique, wid), timeout=RPC_TIMEOUT)
    await client.get_workflow_handle(wid).terminate("done")
    with pytest.raises(RPCError) as err:
        await svc.start_workflow_execution(
            _start(unique, wid, workflow_id_reuse_policy=ReusePolicy.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE),
            timeout=RPC_TIMEOUT,
        )
    assert err.value.status == RPCStatusCode.ALREADY_EXISTS
    assert "Workflow execution already finished." in err.value.message
    assert "reject duplicate workflow Id" in err.value.message


async def test_signal_with_start_retried_signals_once_and_refuses_fail(client: Client, unique: str) -> None:
    svc = client.workflow_service
    wid = f"sws-{unique}"
    request = SignalWithStartWorkflowExecutionRequest(
        namespace="default",
        workflow_id=wid,
        workflow_type=WorkflowType(name="NobodyRunsThis"),
        task_queue=TaskQueue(name=f"ids-{unique}"),
        signal_name="poke",
        request_id=str(uuid.uuid4()),
    )
    first = await svc.signal_with_start_workflow_execution(request, timeout=RPC_TIMEOUT)
    # A client retrying after a lost reply sends the very same request.
    retry = await svc.signal_with_start_workflow_execution(request, timeout=RPC_TIMEOUT)
    assert first.started and not retry.started
    assert retry.run_id == first.run_id
    signals = [
        e async for e in client.get_workflow_handle(wid).fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert len(signals) == 1

    request.workflow_id_conflict_policy = ConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_FAIL
    request.request_id = str(uuid.uuid4())
    with pytest.raises(RPCError) as err:
        await svc.signal_with_start_workflow_execution(request, timeout=RPC_TIMEOUT)
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert "WORKFLOW_ID_CONFLICT_POLICY_FAIL is not supported for this operation" in err.value.message


async def test_cancel_and_terminate_check_the_chain(client: Client, unique: str) -> None:
    svc = client.workflow_service
    wid = f"chain-{unique}"
    started = await svc.start_workflow_execution(_start(unique, wid), timeout=RPC_TIMEOUT)
    execution = WorkflowExecution(workflow_id=wid)
    with pytest.raises(RPCError) as err:
        await svc.terminate_workflow_execution(
            TerminateWorkflowExecutionRequest(
                namespace="default", workflow_execution=execution, first_execution_run_id=str(uuid.uuid4())
            ),
            timeout=RPC_TIMEOUT,
        )
    assert err.value.status == RPCStatusCode.NOT_FOUND
    with pytest.raises(RPCError) as err:
        await svc.request_cancel_workflow_execution(
            RequestCancelWorkflowExecutionRequest(
                namespace="default", workflow_execution=execution, first_execution_run_id=str(uuid.uuid4())
            ),
            timeout=RPC_TIMEOUT,
        )
    assert err.value.status == RPCStatusCode.NOT_FOUND
    # The right chain: terminated; a cancel of the closed run is then a no-op, not an error.
    await svc.terminate_workflow_execution(
        TerminateWorkflowExecutionRequest(
            namespace="default", workflow_execution=execution, first_execution_run_id=started.run_id
        ),
        timeout=RPC_TIMEOUT,
    )
    await svc.request_cancel_workflow_execution(
        RequestCancelWorkflowExecutionRequest(namespace="default", workflow_execution=execution),
        timeout=RPC_TIMEOUT,
    )
    assert (await client.get_workflow_handle(wid).describe()).status.name == "TERMINATED"


async def test_summary_and_details_and_a_complete_describe(client: Client, unique: str) -> None:
    handle = await client.start_workflow(
        "NobodyRunsThis",
        id=f"meta-{unique}",
        task_queue=f"ids-{unique}",
        static_summary="nightly invoices",
        static_details="for **all** customers",
    )
    described = await handle.describe()
    assert await described.static_summary() == "nightly invoices"
    assert await described.static_details() == "for **all** customers"
    raw = described.raw_description
    # Present even when empty, as Temporal sends them.
    assert raw.workflow_execution_info.HasField("search_attributes")
    assert raw.workflow_execution_info.HasField("memo")
    assert raw.HasField("workflow_extended_info")
    assert raw.workflow_extended_info.original_start_time == raw.workflow_execution_info.start_time
    assert len(raw.workflow_extended_info.request_id_infos) == 1
    async for event in handle.fetch_history_events():
        assert event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
        assert b"nightly invoices" in event.user_metadata.summary.data
        break
    await handle.terminate("checked")


async def test_child_reuse_policy_refuses_a_closed_id(client: Client, unique: str) -> None:
    task_queue = f"ids-children-{unique}"
    async with Worker(client, task_queue=task_queue, workflows=[ReusesAChildId, Child]):
        result = await client.execute_workflow(
            ReusesAChildId.run,
            f"child-{unique}",
            id=f"parent-{unique}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=30),
        )
    assert result == "WorkflowAlreadyStartedError"
