"""Workflows and activities for the activity-operation tests (a plain module: the SDK's
sandbox re-imports it)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@activity.defn
async def heartbeat_until_told(catch: bool) -> str:
    """Heartbeats until the server's answer cancels it; then reports why, or lets the
    cancellation fail the attempt. A second attempt returns at once with the details the
    first one left."""
    if activity.info().attempt > 1:
        details = activity.info().heartbeat_details
        return f"attempt {activity.info().attempt} saw {details[0] if details else None}"
    try:
        while True:
            activity.heartbeat("beating")
            await asyncio.sleep(0.1)
    except asyncio.CancelledError:
        why = activity.cancellation_details()
        activity.heartbeat("left-behind")
        if not catch:
            raise
        return f"paused={why.paused} reset={why.reset} cancel={why.cancel_requested}"


@activity.defn
async def quick(name: str) -> str:
    return f"done {name} on attempt {activity.info().attempt}"


@workflow.defn
class OneActivity:
    """Runs one activity with the options given and returns its result."""

    @workflow.run
    async def run(self, args: dict) -> str:
        return await workflow.execute_activity(
            args["activity"],
            args["arg"],
            activity_id="the-activity",
            task_queue=args.get("task_queue"),
            start_to_close_timeout=timedelta(seconds=args.get("start_to_close_s", 30)),
            heartbeat_timeout=timedelta(seconds=args["heartbeat_s"]) if "heartbeat_s" in args else None,
            retry_policy=RetryPolicy(
                maximum_attempts=args.get("max_attempts", 0), initial_interval=timedelta(milliseconds=100)
            ),
        )
