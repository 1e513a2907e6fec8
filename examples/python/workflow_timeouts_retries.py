"""Workflow timeouts and retries.

  1. A workflow that would sleep for a minute is started with a 2 s execution timeout: the
     server times it out, the result raises with a `TimeoutError` cause, and `describe()` shows
     status TIMED_OUT.
  2. A workflow that fails on its first two attempts (`workflow.info().attempt` < 3) is started
     with a retry policy: the server starts a fresh run for each retry, and the third attempt
     succeeds. (Without a retry policy, workflows are not retried.)

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/workflow_timeouts_retries.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, TimeoutError, TimeoutType
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")


@workflow.defn
class SlowWorkflow:
    @workflow.run
    async def run(self) -> str:
        await asyncio.sleep(60)  # a durable timer far beyond the execution timeout
        return "finished (should not happen)"


@workflow.defn
class FlakyWorkflow:
    @workflow.run
    async def run(self) -> str:
        attempt = workflow.info().attempt
        if attempt < 3:
            # An ApplicationError fails the workflow execution (a plain exception would only
            # fail the workflow task and be retried forever by the worker).
            raise ApplicationError(f"attempt {attempt} failed")
        return f"succeeded on attempt {attempt}"


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"wf-timeouts-{uuid.uuid4().hex[:8]}"

    async with Worker(client, task_queue=task_queue, workflows=[SlowWorkflow, FlakyWorkflow]):
        # 1. Execution timeout.
        slow = await client.start_workflow(
            SlowWorkflow.run,
            id=f"slow-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=2),
        )
        try:
            await slow.result()
            raise AssertionError("SlowWorkflow should have timed out")
        except WorkflowFailureError as err:
            print(f"SlowWorkflow with a 2s execution timeout failed: {err.cause!r}")
            assert isinstance(err.cause, TimeoutError), err.cause
            assert err.cause.type == TimeoutType.START_TO_CLOSE, err.cause.type
        status = (await slow.describe()).status
        print(f"SlowWorkflow status: {status.name}")
        assert status == WorkflowExecutionStatus.TIMED_OUT, status

        # 2. Workflow retry policy.
        flaky = await client.start_workflow(
            FlakyWorkflow.run,
            id=f"flaky-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=300),
                backoff_coefficient=1.0,
                maximum_attempts=5,
            ),
        )
        result = await flaky.result()  # follows the chain of retried runs
        print(f"FlakyWorkflow: {result}")
        assert result == "succeeded on attempt 3", result

        # The first run's history ends in a failure that hands over to the retry.
        history = await client.get_workflow_handle(
            flaky.id, run_id=flaky.first_execution_run_id
        ).fetch_history()
        last = history.events[-1]
        failed = last.workflow_execution_failed_event_attributes
        print(f"first run ended with: {failed.failure.message!r}, retried as run "
              f"{failed.new_execution_run_id}")
        assert failed.failure.message == "attempt 1 failed", failed
        assert failed.new_execution_run_id, "the failed run should name its retry"
        desc = await client.get_workflow_handle(flaky.id).describe()
        assert desc.status == WorkflowExecutionStatus.COMPLETED, desc.status
    print("workflow_timeouts_retries: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"workflow_timeouts_retries: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
