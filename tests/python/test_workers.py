"""Worker heartbeats through the official Python SDK: a worker whose namespace advertises
`worker_heartbeats` reports itself, and ListWorkers, CountWorkers and DescribeWorker show
it — with Temporal's query fields — as running, then shutting down, until it reports
Shutdown."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import TaskQueueType, WorkerStatus
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    CountWorkersRequest,
    DescribeNamespaceRequest,
    DescribeTaskQueueRequest,
    DescribeWorkerRequest,
    ListWorkersRequest,
    PollNexusTaskQueueRequest,
    RecordWorkerHeartbeatRequest,
)
from temporalio.client import Client
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from durin_workflows import EchoWorkflow
from waiting import eventually


async def heartbeating_client(address: str) -> Client:
    """A client whose workers heartbeat every second (the SDK's default is a minute)."""
    runtime = Runtime(telemetry=TelemetryConfig(), worker_heartbeat_interval=timedelta(seconds=1))
    return await Client.connect(address, runtime=runtime)


async def listed(client: Client, query: str):
    resp = await client.workflow_service.list_workers(
        ListWorkersRequest(namespace=client.namespace, query=query)
    )
    return list(resp.workers_info)


async def test_namespace_advertises_worker_heartbeats(client: Client) -> None:
    resp = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))
    assert resp.namespace_info.capabilities.worker_heartbeats


async def test_a_running_worker_is_listed_described_and_counted_until_it_stops(
    durin_server, unique: str
) -> None:
    client = await heartbeating_client(durin_server.address)
    query = f"TaskQueue = '{unique}'"
    async with Worker(client, task_queue=unique, workflows=[EchoWorkflow]):
        result = await client.execute_workflow(
            EchoWorkflow.run, "heartbeat", id=f"wf-{unique}", task_queue=unique
        )
        assert result == "echo:heartbeat"

        async def reported_running():
            found = await listed(client, query)
            return found if found and found[0].worker_heartbeat.status == WorkerStatus.WORKER_STATUS_RUNNING else None

        [info] = await eventually(reported_running, "the worker's heartbeat")
        hb = info.worker_heartbeat
        assert hb.sdk_name and hb.sdk_version and hb.host_info.host_name
        assert hb.start_time.seconds > 0 and hb.heartbeat_time.seconds > 0

        # The short form beside the full one, the count and the describe agree.
        resp = await client.workflow_service.list_workers(
            ListWorkersRequest(namespace=client.namespace, query=query)
        )
        assert [w.worker_instance_key for w in resp.workers] == [hb.worker_instance_key]
        assert resp.workers[0].host_name == hb.host_info.host_name
        count = await client.workflow_service.count_workers(
            CountWorkersRequest(namespace=client.namespace, query=query)
        )
        assert count.count == 1
        described = await client.workflow_service.describe_worker(
            DescribeWorkerRequest(namespace=client.namespace, worker_instance_key=hb.worker_instance_key)
        )
        assert described.worker_info.worker_heartbeat.task_queue == unique

        # Query fields beyond the task queue select it, and exclude it.
        assert await listed(client, f"{query} AND Status = 'Running' AND SdkName STARTS_WITH 'temporal'")
        assert not await listed(client, f"{query} AND HostName = 'no-such-host'")
        assert not await listed(client, f"{query} AND HeartbeatTime < '2000-01-01T00:00:00Z'")

        # Its workflow poller is not a Nexus poller.
        nexus_pollers = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=unique),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_NEXUS,
            )
        )
        assert not nexus_pollers.pollers

    # Its last report (with ShutdownWorker) says it is shutting down; as on Temporal it stays
    # listed so until it reports Shutdown or falls silent past the registry's TTL.
    async def shutting_down():
        found = await listed(client, query)
        return found and found[0].worker_heartbeat.status == WorkerStatus.WORKER_STATUS_SHUTTING_DOWN

    await eventually(shutting_down, "the stopping worker's last report")
    last = (await listed(client, query))[0].worker_heartbeat
    last.status = WorkerStatus.WORKER_STATUS_SHUTDOWN
    await client.workflow_service.record_worker_heartbeat(
        RecordWorkerHeartbeatRequest(namespace=client.namespace, worker_heartbeat=[last])
    )
    assert not await listed(client, query)
    with pytest.raises(RPCError) as err:
        await client.workflow_service.describe_worker(
            DescribeWorkerRequest(namespace=client.namespace, worker_instance_key=hb.worker_instance_key)
        )
    assert err.value.status == RPCStatusCode.NOT_FOUND


async def test_a_nexus_poll_waits_answers_empty_and_is_seen_as_a_nexus_poller(
    client: Client, unique: str
) -> None:
    """No Nexus operation is dispatched yet: a poll waits out its deadline and answers empty,
    and meanwhile DescribeTaskQueue shows it under the Nexus type only."""
    poll = asyncio.create_task(
        client.workflow_service.poll_nexus_task_queue(
            PollNexusTaskQueueRequest(
                namespace=client.namespace, identity="nexus-poller", task_queue=TaskQueue(name=unique)
            ),
            timeout=timedelta(seconds=3),
        )
    )

    async def pollers(kind: TaskQueueType.ValueType):
        d = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace, task_queue=TaskQueue(name=unique), task_queue_type=kind
            )
        )
        return [p.identity for p in d.pollers]

    assert await eventually(lambda: pollers(TaskQueueType.TASK_QUEUE_TYPE_NEXUS), "the Nexus poller") == [
        "nexus-poller"
    ]
    assert await pollers(TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW) == []
    answer = await poll
    assert not answer.task_token and not answer.HasField("request")


async def test_a_bad_worker_query_is_invalid_argument(client: Client) -> None:
    with pytest.raises(RPCError) as err:
        await listed(client, "NoSuchField = 'x'")
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
