"""Worker versioning through the official Python SDK: two versions of a worker poll one task
queue with versioning on; the deployment's routing (current and ramping version) decides
where new and auto-upgrade workflows go, pinned workflows stay on their version, the old
version drains, a versioning override pins a running workflow, and the routing survives a
restart."""

from __future__ import annotations

import subprocess
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionMessage
from temporalio.api.enums.v1 import (
    EventType,
    TaskQueueType,
    VersionDrainageStatus,
    VersioningBehavior,
    WorkerDeploymentVersionStatus,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflow.v1 import VersioningOverride, WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (
    CountWorkflowExecutionsRequest,
    DeleteWorkerDeploymentVersionRequest,
    DescribeTaskQueueRequest,
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentVersionRequest,
    ListWorkerDeploymentsRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentManagerRequest,
    SetWorkerDeploymentRampingVersionRequest,
    UpdateWorkflowExecutionOptionsRequest,
)
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker, WorkerDeploymentConfig

from conftest import DurinServer, _durin_bin, _stop, _wait_until_serving, launch_durin
from versioning_workflows import V1_WORKFLOWS, V2_WORKFLOWS, RolloutV1, UpgradingV1
from waiting import eventually


@asynccontextmanager
async def two_versions(client: Client, deployment: str, task_queue: str):
    """Workers of build 1.0 and 2.0 of `deployment` on `task_queue`, versioning on."""

    def worker(build_id: str, workflows) -> Worker:
        return Worker(
            client,
            task_queue=task_queue,
            workflows=workflows,
            deployment_config=WorkerDeploymentConfig(
                version=WorkerDeploymentVersion(deployment_name=deployment, build_id=build_id),
                use_worker_versioning=True,
            ),
        )

    async with worker("1.0", V1_WORKFLOWS), worker("2.0", V2_WORKFLOWS):
        yield


async def describe(client: Client, deployment: str):
    return await client.workflow_service.describe_worker_deployment(
        DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
    )


async def both_versions_polled(client: Client, deployment: str):
    async def seen():
        try:
            resp = await describe(client, deployment)
        except RPCError:
            return None
        builds = {v.deployment_version.build_id for v in resp.worker_deployment_info.version_summaries}
        return resp if {"1.0", "2.0"} <= builds else None

    return await eventually(seen, f"both versions of {deployment} polled")


async def set_current(client: Client, deployment: str, build_id: str, token: bytes, identity: str = ""):
    return await client.workflow_service.set_worker_deployment_current_version(
        SetWorkerDeploymentCurrentVersionRequest(
            namespace=client.namespace,
            deployment_name=deployment,
            build_id=build_id,
            conflict_token=token,
            identity=identity,
        )
    )


async def set_ramping(client: Client, deployment: str, build_id: str, percentage: float, token: bytes):
    return await client.workflow_service.set_worker_deployment_ramping_version(
        SetWorkerDeploymentRampingVersionRequest(
            namespace=client.namespace,
            deployment_name=deployment,
            build_id=build_id,
            percentage=percentage,
            conflict_token=token,
        )
    )


async def version_info(client: Client, deployment: str, build_id: str):
    resp = await client.workflow_service.describe_worker_deployment_version(
        DescribeWorkerDeploymentVersionRequest(
            namespace=client.namespace,
            deployment_version=VersionMessage(deployment_name=deployment, build_id=build_id),
        )
    )
    return resp.worker_deployment_version_info


async def running_on(handle, build_id: str) -> bool:
    info = (await handle.describe()).raw_description.workflow_execution_info
    return info.versioning_info.deployment_version.build_id == build_id


async def count(client: Client, query: str) -> int:
    resp = await client.workflow_service.count_workflow_executions(
        CountWorkflowExecutionsRequest(namespace=client.namespace, query=query)
    )
    return resp.count


async def test_pinned_runs_stay_auto_upgrade_runs_move_and_the_old_version_drains(
    client: Client, unique: str
) -> None:
    deployment = f"shop-{unique}"
    async with two_versions(client, deployment, unique):
        described = await both_versions_polled(client, deployment)
        statuses = {
            v.deployment_version.build_id: v.status
            for v in described.worker_deployment_info.version_summaries
        }
        assert statuses == {
            "1.0": WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE,
            "2.0": WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE,
        }
        to_v1 = await set_current(client, deployment, "1.0", described.conflict_token)

        pinned = await client.start_workflow(RolloutV1.run, id=f"pinned-{unique}", task_queue=unique)
        upgrading = await client.start_workflow(UpgradingV1.run, id=f"auto-{unique}", task_queue=unique)
        for handle in (pinned, upgrading):
            await eventually(lambda h=handle: running_on(h, "1.0"), "a first workflow task on 1.0")
            assert await handle.query("version") == "v1"

        to_v2 = await set_current(client, deployment, "2.0", to_v1.conflict_token)
        assert to_v2.conflict_token != to_v1.conflict_token
        assert to_v2.previous_deployment_version.build_id == "1.0"
        routing = (await describe(client, deployment)).worker_deployment_info.routing_config
        assert routing.current_deployment_version.build_id == "2.0"

        # The pinned run keeps 1.0 busy: it drains; the auto-upgrade run answers from 2.0.
        old = await version_info(client, deployment, "1.0")
        assert old.status == WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING
        assert old.drainage_info.status == VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINING
        assert await upgrading.query("version") == "v2"
        assert await pinned.query("version") == "v1"
        assert await count(
            client,
            f"TemporalWorkerDeploymentVersion = '{deployment}:1.0' "
            "AND TemporalWorkflowVersioningBehavior = 'Pinned' AND ExecutionStatus = 'Running'",
        ) == 1

        await pinned.signal("finish")
        await upgrading.signal("finish")
        assert await pinned.result() == "v1"
        assert await upgrading.result() == "v2"
        completed = [
            e.workflow_task_completed_event_attributes
            async for e in upgrading.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        ]
        assert [c.deployment_version.build_id for c in completed] == ["1.0", "2.0"]
        assert completed[-1].versioning_behavior == VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE

        old = await version_info(client, deployment, "1.0")
        assert old.status == WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED
        assert {(q.name, q.type) for q in old.task_queue_infos} >= {
            (unique, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
        }

        pollers = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=unique),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        assert {p.deployment_options.build_id for p in pollers.pollers} == {"1.0", "2.0"}
        assert pollers.versioning_info.current_deployment_version.build_id == "2.0"

        # A drained version whose workers still poll stays.
        with pytest.raises(RPCError) as refused:
            await client.workflow_service.delete_worker_deployment_version(
                DeleteWorkerDeploymentVersionRequest(
                    namespace=client.namespace,
                    deployment_version=VersionMessage(deployment_name=deployment, build_id="1.0"),
                )
            )
        assert refused.value.status == RPCStatusCode.FAILED_PRECONDITION

    listed = await client.workflow_service.list_worker_deployments(
        ListWorkerDeploymentsRequest(namespace=client.namespace)
    )
    summary = next(d for d in listed.worker_deployments if d.name == deployment)
    assert summary.routing_config.current_deployment_version.build_id == "2.0"


async def test_a_ramp_takes_its_share_and_stale_tokens_and_other_managers_are_refused(
    client: Client, unique: str
) -> None:
    deployment = f"ramp-{unique}"
    async with two_versions(client, deployment, unique):
        described = await both_versions_polled(client, deployment)
        token = (await set_current(client, deployment, "1.0", described.conflict_token)).conflict_token

        async def run_one(prefix: str) -> str:
            handle = await client.start_workflow(
                RolloutV1.run, id=f"{prefix}-{uuid.uuid4().hex[:8]}", task_queue=unique
            )
            await handle.signal("finish")
            return await handle.result()

        token = (await set_ramping(client, deployment, "2.0", 100, token)).conflict_token
        assert {await run_one("all") for _ in range(3)} == {"v2"}
        token = (await set_ramping(client, deployment, "2.0", 0, token)).conflict_token
        assert {await run_one("none") for _ in range(3)} == {"v1"}
        token = (await set_ramping(client, deployment, "2.0", 50, token)).conflict_token
        routing = (await describe(client, deployment)).worker_deployment_info.routing_config
        assert (routing.ramping_deployment_version.build_id, routing.ramping_version_percentage) == ("2.0", 50)
        assert {await run_one("half") for _ in range(16)} == {"v1", "v2"}

        # A token from before the last change is refused, as is ramping the current version.
        with pytest.raises(RPCError) as stale:
            await set_current(client, deployment, "2.0", described.conflict_token)
        assert stale.value.status == RPCStatusCode.FAILED_PRECONDITION
        with pytest.raises(RPCError) as current:
            await set_ramping(client, deployment, "1.0", 10, token)
        assert current.value.status == RPCStatusCode.FAILED_PRECONDITION

        # Once a manager is named, only it changes the routing.
        managed = await client.workflow_service.set_worker_deployment_manager(
            SetWorkerDeploymentManagerRequest(
                namespace=client.namespace,
                deployment_name=deployment,
                manager_identity="rollout-controller",
                conflict_token=token,
                identity="rollout-controller",
            )
        )
        with pytest.raises(RPCError) as intruder:
            await set_current(client, deployment, "2.0", managed.conflict_token, identity="someone-else")
        assert intruder.value.status == RPCStatusCode.FAILED_PRECONDITION
        await set_current(client, deployment, "2.0", managed.conflict_token, identity="rollout-controller")


async def test_an_override_pins_a_running_workflow_until_it_is_unset(client: Client, unique: str) -> None:
    deployment = f"override-{unique}"
    async with two_versions(client, deployment, unique):
        described = await both_versions_polled(client, deployment)
        token = (await set_current(client, deployment, "1.0", described.conflict_token)).conflict_token
        handle = await client.start_workflow(UpgradingV1.run, id=f"pin-me-{unique}", task_queue=unique)
        await eventually(lambda: running_on(handle, "1.0"), "a first workflow task on 1.0")

        async def options(override: VersioningOverride | None):
            return await client.workflow_service.update_workflow_execution_options(
                UpdateWorkflowExecutionOptionsRequest(
                    namespace=client.namespace,
                    workflow_execution=WorkflowExecution(workflow_id=handle.id),
                    workflow_execution_options=WorkflowExecutionOptions(versioning_override=override),
                    update_mask=FieldMask(paths=["versioning_override"]),
                    identity="operator",
                )
            )

        pin = VersioningOverride(
            pinned=VersioningOverride.PinnedOverride(
                behavior=VersioningOverride.PINNED_OVERRIDE_BEHAVIOR_PINNED,
                version=VersionMessage(deployment_name=deployment, build_id="1.0"),
            )
        )
        answered = await options(pin)
        assert answered.workflow_execution_options.versioning_override.pinned.version.build_id == "1.0"
        await set_current(client, deployment, "2.0", token)
        assert await handle.query("version") == "v1"
        info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
        assert info.versioning_override.pinned.version.build_id == "1.0"

        unpinned = await options(None)
        assert not unpinned.workflow_execution_options.HasField("versioning_override")
        assert await handle.query("version") == "v2"
        await handle.signal("finish")
        assert await handle.result() == "v2"
        updates = [
            e.workflow_execution_options_updated_event_attributes
            async for e in handle.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED
        ]
        assert [u.unset_versioning_override for u in updates] == [False, True]
        assert updates[0].versioning_override.pinned.version.build_id == "1.0"

        with pytest.raises(RPCError) as closed:
            await options(pin)
        assert closed.value.status == RPCStatusCode.FAILED_PRECONDITION


async def test_the_routing_and_pinned_runs_survive_a_restart(tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    first = launch_durin(tmp_path / "first")
    deployment = "restart"
    task_queue = "versioned"
    try:
        await _wait_until_serving(first.address, first.process)
        client = await Client.connect(first.address)
        async with two_versions(client, deployment, task_queue):
            described = await both_versions_polled(client, deployment)
            token = (await set_current(client, deployment, "1.0", described.conflict_token)).conflict_token
            pinned = await client.start_workflow(RolloutV1.run, id="pinned", task_queue=task_queue)
            await eventually(lambda: running_on(pinned, "1.0"), "a first workflow task on 1.0")
            await set_current(client, deployment, "2.0", token)
    finally:
        _stop(first.process)

    again = launch_durin_on(first)
    try:
        await _wait_until_serving(again.address, again.process)
        client = await Client.connect(again.address)
        routing = (await describe(client, deployment)).worker_deployment_info.routing_config
        assert routing.current_deployment_version.build_id == "2.0"
        async with two_versions(client, deployment, task_queue):
            fresh = await client.start_workflow(RolloutV1.run, id="fresh", task_queue=task_queue)
            handle = client.get_workflow_handle("pinned")
            await handle.signal("finish")
            await fresh.signal("finish")
            assert await handle.result() == "v1"
            assert await fresh.result() == "v2"
    finally:
        _stop(again.process)


def launch_durin_on(before: DurinServer) -> DurinServer:
    """`durin dev` again on the data directory and port of a stopped server."""
    host, port = before.address.rsplit(":", 1)
    log = open(before.log_path, "ab")
    proc = subprocess.Popen(
        [str(_durin_bin()), "dev", "--ip", host, "--port", port, "--data-dir", str(before.data_dir),
         "--metrics-port", "0"],
        stdout=log, stderr=log, start_new_session=True,
    )
    return DurinServer(address=before.address, process=proc, data_dir=before.data_dir, log_path=before.log_path)
