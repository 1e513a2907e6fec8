"""Activity retries and timeouts.

  1. A flaky activity fails on its first two attempts; the activity's retry policy (short,
     constant backoff) makes the server retry it, and the third attempt succeeds. The workflow
     never sees the failures.
  2. An activity that takes longer than its 1 s start-to-close timeout, with retries disabled
     (`maximum_attempts=1`): the server times the attempt out and the workflow gets an
     `ActivityError` whose cause is a `TimeoutError` of type START_TO_CLOSE.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/activity_timeouts_retries.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")


@activity.defn
async def flaky_charge(amount: int) -> str:
    attempt = activity.info().attempt
    if attempt < 3:
        # Any exception fails this attempt; the retry policy decides whether to retry.
        raise RuntimeError(f"payment gateway unavailable (attempt {attempt})")
    return f"charged {amount} on attempt {attempt}"


@activity.defn
async def slow_report() -> str:
    await asyncio.sleep(5)  # far longer than the 1s start-to-close timeout
    return "report done (should not happen)"


@workflow.defn
class PaymentWorkflow:
    @workflow.run
    async def run(self) -> list[str]:
        outcomes = []
        # 1. Retried until it succeeds.
        outcomes.append(
            await workflow.execute_activity(
                flaky_charge,
                42,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=200),
                    backoff_coefficient=1.0,
                    maximum_attempts=5,
                ),
            )
        )
        # 2. Timed out, not retried.
        try:
            await workflow.execute_activity(
                slow_report,
                start_to_close_timeout=timedelta(seconds=1),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
            outcomes.append("slow_report finished")
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, TimeoutError) and cause.type == TimeoutType.START_TO_CLOSE:
                outcomes.append("slow_report timed out (START_TO_CLOSE)")
            else:
                outcomes.append(f"slow_report failed unexpectedly: {cause!r}")
        return outcomes


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"act-timeouts-{uuid.uuid4().hex[:8]}"

    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[PaymentWorkflow],
        activities=[flaky_charge, slow_report],
    ):
        outcomes = await client.execute_workflow(
            PaymentWorkflow.run, id=f"payment-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        for outcome in outcomes:
            print(outcome)
        assert outcomes == [
            "charged 42 on attempt 3",
            "slow_report timed out (START_TO_CLOSE)",
        ], outcomes
    print("activity_timeouts_retries: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"activity_timeouts_retries: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
