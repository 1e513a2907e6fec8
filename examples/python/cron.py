"""A cron workflow: started with `cron_schedule`, the server runs it again and again, each time
as a new run of the same workflow id, until it is terminated.

Each run of `TickWorkflow` reads the previous run's result with
`workflow.get_last_completion_result()` and returns it plus one, so the runs count themselves.
The script follows the chain of runs through their histories until three runs have completed,
then terminates the cron workflow.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/cron.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import traceback
import uuid

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")

RUNS_TO_SEE = 3


@workflow.defn
class TickWorkflow:
    @workflow.run
    async def run(self) -> int:
        # None on the first run; afterwards whatever the previous completed run returned.
        previous = workflow.get_last_completion_result(type_hint=int)
        return (previous or 0) + 1


async def completed_runs(client: Client, workflow_id: str, first_run_id: str) -> list[tuple[str, int]]:
    """(run id, result) of each completed run so far, following the chain from the first run."""
    runs = []
    run_id = first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            break  # still waiting for its scheduled time / running
        attrs = last.workflow_execution_completed_event_attributes
        [result] = await client.data_converter.decode_wrapper(attrs.result)
        runs.append((run_id, result))
        run_id = attrs.new_execution_run_id  # the next run the cron schedule started
    return runs


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"cron-{uuid.uuid4().hex[:8]}"
    workflow_id = f"tick-{uuid.uuid4().hex[:8]}"

    async with Worker(client, task_queue=task_queue, workflows=[TickWorkflow]):
        started = time.monotonic()
        handle = await client.start_workflow(
            TickWorkflow.run, id=workflow_id, task_queue=task_queue, cron_schedule="@every 2s"
        )
        print(f"started {workflow_id} with cron schedule '@every 2s'")

        runs: list[tuple[str, int]] = []
        while len(runs) < RUNS_TO_SEE:
            if time.monotonic() - started > 30:
                raise AssertionError(f"expected {RUNS_TO_SEE} cron runs within 30s, saw {runs}")
            await asyncio.sleep(0.2)
            runs = await completed_runs(client, workflow_id, handle.first_execution_run_id)
        for run_id, result in runs:
            print(f"  run {run_id} returned {result}")
        assert [r for _, r in runs[:RUNS_TO_SEE]] == list(range(1, RUNS_TO_SEE + 1)), runs
        print(f"{len(runs)} runs in {time.monotonic() - started:.1f}s, each one more than the last")

        # A cron workflow never finishes on its own; terminate it to stop the schedule.
        await client.get_workflow_handle(workflow_id).terminate(reason="seen enough ticks")
        status = (await client.get_workflow_handle(workflow_id).describe()).status
        print(f"terminated; latest run status {status.name}")
        assert status == WorkflowExecutionStatus.TERMINATED, status
    print("cron: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"cron: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
