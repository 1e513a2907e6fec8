"""Worker versioning: ship a new version of a worker while workflows are running.

Two builds of one worker program poll the same task queue with versioning on, as two
versions (`1.0`, `2.0`) of the worker deployment `orders`. Each registers its own code for
the same workflow names:
- `OrderWorkflow` is PINNED: a run stays on the version it started on, so a running order
  never replays on code it did not start with;
- `InventoryWorkflow` is AUTO_UPGRADE: a run moves to the current version at its next
  workflow task.

The script makes 1.0 current, starts one of each, makes 2.0 current (as a rollout would after
a ramp), and shows the pinned run finishing on 1.0 while the auto-upgrade run finishes on 2.0;
version 1.0 is DRAINING while the pinned run lives and DRAINED after.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/worker_versioning.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid

from temporalio import workflow
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionMessage
from temporalio.api.enums.v1 import WorkerDeploymentVersionStatus
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError
from temporalio.worker import Worker, WorkerDeploymentConfig

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")


class _Order:
    """Waits to be shipped; says which build shipped it."""

    BUILD = ""

    def __init__(self) -> None:
        self.shipped = False

    async def wait_and_ship(self) -> str:
        await workflow.wait_condition(lambda: self.shipped)
        return f"order shipped by {self.BUILD}"

    @workflow.signal
    def ship(self) -> None:
        self.shipped = True


class _Inventory:
    """Waits to be counted; says which build counted it."""

    BUILD = ""

    def __init__(self) -> None:
        self.counted = False

    async def wait_and_count(self) -> str:
        await workflow.wait_condition(lambda: self.counted)
        return f"inventory counted by {self.BUILD}"

    @workflow.signal
    def count(self) -> None:
        self.counted = True


# Build 1.0's code.
@workflow.defn(name="OrderWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class OrderV1(_Order):
    BUILD = "v1"

    @workflow.run
    async def run(self) -> str:
        return await self.wait_and_ship()


@workflow.defn(name="InventoryWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class InventoryV1(_Inventory):
    BUILD = "v1"

    @workflow.run
    async def run(self) -> str:
        return await self.wait_and_count()


# Build 2.0's code: the same workflow names.
@workflow.defn(name="OrderWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class OrderV2(_Order):
    BUILD = "v2"

    @workflow.run
    async def run(self) -> str:
        return await self.wait_and_ship()


@workflow.defn(name="InventoryWorkflow", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class InventoryV2(_Inventory):
    BUILD = "v2"

    @workflow.run
    async def run(self) -> str:
        return await self.wait_and_count()


BUILDS = {"1.0": [OrderV1, InventoryV1], "2.0": [OrderV2, InventoryV2]}


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    deployment = f"orders-{uuid.uuid4().hex[:6]}"
    task_queue = f"orders-{uuid.uuid4().hex[:8]}"

    def build(build_id: str) -> Worker:
        return Worker(
            client,
            task_queue=task_queue,
            workflows=BUILDS[build_id],
            deployment_config=WorkerDeploymentConfig(
                version=WorkerDeploymentVersion(deployment_name=deployment, build_id=build_id),
                use_worker_versioning=True,
            ),
        )

    async def describe():
        return await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=NAMESPACE, deployment_name=deployment)
        )

    async def make_current(build_id: str, token: bytes) -> bytes:
        resp = await client.workflow_service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=NAMESPACE, deployment_name=deployment, build_id=build_id, conflict_token=token
            )
        )
        print(f"current version: {deployment}.{build_id}")
        return resp.conflict_token

    async def status_of(build_id: str) -> str:
        resp = await client.workflow_service.describe_worker_deployment_version(
            DescribeWorkerDeploymentVersionRequest(
                namespace=NAMESPACE,
                deployment_version=VersionMessage(deployment_name=deployment, build_id=build_id),
            )
        )
        return WorkerDeploymentVersionStatus.Name(resp.worker_deployment_version_info.status)

    async with build("1.0"), build("2.0"):
        # Each version appears once its workers poll.
        for _ in range(100):
            try:
                described = await describe()
                builds = {v.deployment_version.build_id for v in described.worker_deployment_info.version_summaries}
                if builds == {"1.0", "2.0"}:
                    break
            except RPCError:
                pass
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("the versions never appeared")
        token = await make_current("1.0", described.conflict_token)

        order = await client.start_workflow("OrderWorkflow", id=f"order-{uuid.uuid4().hex[:8]}", task_queue=task_queue)
        inventory = await client.start_workflow(
            "InventoryWorkflow", id=f"inventory-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        for handle in (order, inventory):
            for _ in range(100):
                info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
                if info.deployment_version.build_id == "1.0":
                    break
                await asyncio.sleep(0.1)
        print("both workflows started on 1.0")

        await make_current("2.0", token)
        print(f"version 1.0 while the pinned order runs: {await status_of('1.0')}")
        assert await status_of("1.0") == "WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING"

        await order.signal("ship")
        await inventory.signal("count")
        order_result = await order.result()
        inventory_result = await inventory.result()
        print(f"pinned: {order_result}")
        print(f"auto-upgrade: {inventory_result}")
        assert order_result == "order shipped by v1", order_result
        assert inventory_result == "inventory counted by v2", inventory_result
        print(f"version 1.0 after: {await status_of('1.0')}")
        assert await status_of("1.0") == "WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED"
    print("worker_versioning: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"worker_versioning: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
