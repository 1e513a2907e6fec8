"""Workflows started by schedules in the Python schedule tests (kept free of pytest for the
SDK sandbox)."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn
class RunningTotal:
    """Adds its argument to the previous scheduled run's result (last completion result)."""

    @workflow.run
    async def run(self, step: int) -> int:
        previous = 0
        if workflow.has_last_completion_result():
            previous = workflow.get_last_completion_result(int)
        return previous + step
