"""DeleteNamespace (OperatorService) through the official Python SDK: the namespace, its
workflow runs (open ones terminated first), standalone activities, schedules and worker
reports go; its name is
free at once. (That nothing comes back after a restart, archived runs included, is checked in
tests/archive.rs.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.operatorservice.v1 import DeleteNamespaceRequest
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    ListWorkflowExecutionsRequest,
    RegisterNamespaceRequest,
)
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from durin_workflows import EchoWorkflow, WaitForeverWorkflow, compose_greeting


async def register(client: Client, name: str) -> None:
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=Duration(seconds=86400))
    )


async def run_ids(client: Client, name: str) -> list[str]:
    resp = await client.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=name))
    return [e.execution.run_id for e in resp.executions]


async def test_deleting_a_namespace_removes_it_and_everything_in_it(client: Client, unique: str) -> None:
    name = f"doomed-{unique}"
    await register(client, name)
    inside = await Client.connect(client.service_client.config.target_host, namespace=name)
    tq = f"tq-{unique}"
    async with Worker(inside, task_queue=tq, workflows=[EchoWorkflow, WaitForeverWorkflow]):
        assert await inside.execute_workflow(EchoWorkflow.run, "x", id=f"done-{unique}", task_queue=tq) == "echo:x"
        open_run = await inside.start_workflow(WaitForeverWorkflow.run, id=f"open-{unique}", task_queue=tq)
        # A standalone activity no worker takes: terminated and deleted with the namespace.
        open_activity = await inside.start_activity(
            compose_greeting, "x", id=f"act-{unique}", task_queue=f"nobody-{unique}",
            start_to_close_timeout=timedelta(seconds=10),
        )
        await inside.create_schedule(
            f"sched-{unique}",
            Schedule(
                action=ScheduleActionStartWorkflow(EchoWorkflow.run, "s", id=f"s-{unique}", task_queue=tq),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            ),
        )
    assert len(await run_ids(client, name)) == 2

    resp = await client.operator_service.delete_namespace(DeleteNamespaceRequest(namespace=name))
    assert resp.deleted_namespace.startswith(f"{name}-deleted-"), resp

    with pytest.raises(RPCError) as err:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=name))
    assert err.value.status == RPCStatusCode.NOT_FOUND
    with pytest.raises(RPCError) as err:
        await open_run.describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND
    with pytest.raises(RPCError) as err:
        await open_activity.describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND
    with pytest.raises(RPCError) as err:
        await client.operator_service.delete_namespace(DeleteNamespaceRequest(namespace=name))
    assert err.value.status == RPCStatusCode.NOT_FOUND

    # The name is free, and the new namespace starts empty.
    await register(client, name)
    assert await run_ids(client, name) == []
    assert [a async for a in inside.list_activities("")] == []
    assert [s async for s in await inside.list_schedules()] == []
    # The same workflow id starts afresh (the deleted run does not hold it).
    async with Worker(inside, task_queue=tq, workflows=[WaitForeverWorkflow]):
        again = await inside.start_workflow(WaitForeverWorkflow.run, id=f"open-{unique}", task_queue=tq)
        assert again.result_run_id != open_run.result_run_id
        assert (await again.describe()).status == WorkflowExecutionStatus.RUNNING
        await again.terminate("done")


async def test_deleting_an_unknown_namespace_is_not_found(client: Client, unique: str) -> None:
    with pytest.raises(RPCError) as err:
        await client.operator_service.delete_namespace(DeleteNamespaceRequest(namespace=f"never-{unique}"))
    assert err.value.status == RPCStatusCode.NOT_FOUND
