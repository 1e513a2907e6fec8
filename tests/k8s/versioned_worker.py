"""What the pods of a `Worker` with `spec.rollout` run in the rollout test: a worker that
polls as the version the operator gave its Deployment (TEMPORAL_DEPLOYMENT_NAME,
TEMPORAL_WORKER_BUILD_ID) with worker versioning on. WORKER_CODE (`v1`, `v2` or `v3`, the tag
of the pod's image) picks which code of `versioning_workflows` this image carries (v3's gate
workflow fails)."""

from __future__ import annotations

import asyncio
import os

from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig

from versioning_workflows import BROKEN_WORKFLOWS, V1_WORKFLOWS, V2_WORKFLOWS


async def main() -> None:
    env = os.environ
    client = await Client.connect(env["TEMPORAL_ADDRESS"], namespace=env["TEMPORAL_NAMESPACE"])
    code = {"v1": V1_WORKFLOWS, "v2": V2_WORKFLOWS, "v3": BROKEN_WORKFLOWS}[env["WORKER_CODE"]]
    version = WorkerDeploymentVersion(
        deployment_name=env["TEMPORAL_DEPLOYMENT_NAME"],
        build_id=env["TEMPORAL_WORKER_BUILD_ID"],
    )
    worker = Worker(
        client,
        task_queue=env["TEMPORAL_TASK_QUEUE"],
        workflows=code,
        deployment_config=WorkerDeploymentConfig(version=version, use_worker_versioning=True),
    )
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
