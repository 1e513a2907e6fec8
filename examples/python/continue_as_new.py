"""Continue-as-new: a long-lived workflow that keeps its history short by restarting itself.

`CounterWorkflow` counts a few steps per run and then calls `workflow.continue_as_new(...)`,
passing its state (the running count and the run number) to a fresh run with the same workflow
id and an empty history. After five runs it returns. The script then walks the chain of runs
through their histories: each run's last event is WORKFLOW_EXECUTION_CONTINUED_AS_NEW, naming
the next run.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/continue_as_new.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid
from dataclasses import dataclass

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")

STEPS_PER_RUN = 3
RUNS = 5


@dataclass
class CounterState:
    count: int = 0
    run_number: int = 1


@workflow.defn
class CounterWorkflow:
    @workflow.run
    async def run(self, state: CounterState) -> str:
        for _ in range(STEPS_PER_RUN):
            state.count += 1
        if state.run_number < RUNS:
            # Ends this run; the server starts the next one with these arguments.
            workflow.continue_as_new(CounterState(state.count, state.run_number + 1))
        return f"count {state.count} after {state.run_number} runs"


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"continue-as-new-{uuid.uuid4().hex[:8]}"
    workflow_id = f"counter-{uuid.uuid4().hex[:8]}"

    async with Worker(client, task_queue=task_queue, workflows=[CounterWorkflow]):
        handle = await client.start_workflow(
            CounterWorkflow.run, CounterState(), id=workflow_id, task_queue=task_queue
        )
        result = await handle.result()  # follows the chain to the last run
        print(f"result: {result}")
        assert result == f"count {STEPS_PER_RUN * RUNS} after {RUNS} runs", result

        # Walk the chain of runs, starting from the first.
        run_id = handle.first_execution_run_id
        chain = []
        while True:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
            last = history.events[-1]
            chain.append(run_id)
            if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                break
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        for i, rid in enumerate(chain, 1):
            print(f"  run {i}: {rid}")
        assert len(chain) == RUNS, chain
        assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED

        first = await client.get_workflow_handle(workflow_id, run_id=chain[0]).describe()
        latest = await client.get_workflow_handle(workflow_id).describe()
        print(f"first run status {first.status.name}, latest run status {latest.status.name}")
        assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW, first.status
        assert latest.run_id == chain[-1], (latest.run_id, chain[-1])
        assert latest.status == WorkflowExecutionStatus.COMPLETED, latest.status
    print("continue_as_new: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"continue_as_new: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
