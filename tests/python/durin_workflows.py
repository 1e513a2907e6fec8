"""Workflows and activities used by the Python SDK tests.

They live in their own module, importing only the standard library and temporalio,
so the SDK's workflow sandbox can re-import them without dragging pytest along.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def compose_greeting(name: str) -> str:
    return f"Hello, {name}!"


@workflow.defn
class GreetingWorkflow:
    """Runs an activity, then waits for a `finish` signal, then for a `release` signal.

    The `state` query reports "<phase>:<greeting>:<signal value>" so a test can watch
    each step: "waiting" once the activity result is in, "signalled" once `finish`
    arrived, "done" once the workflow is about to return.
    """

    def __init__(self) -> None:
        self._phase = "starting"
        self._greeting = ""
        self._signal_value: str | None = None
        self._released = False

    @workflow.run
    async def run(self, name: str) -> str:
        self._phase = "running-activity"
        self._greeting = await workflow.execute_activity(
            compose_greeting,
            name,
            start_to_close_timeout=timedelta(seconds=30),
        )
        self._phase = "waiting"
        await workflow.wait_condition(lambda: self._signal_value is not None)
        self._phase = "signalled"
        await workflow.wait_condition(lambda: self._released)
        self._phase = "done"
        return f"{self._greeting} signal={self._signal_value}"

    @workflow.signal
    def finish(self, value: str) -> None:
        self._signal_value = value

    @workflow.signal
    def release(self) -> None:
        self._released = True

    @workflow.query
    def state(self) -> str:
        return f"{self._phase}:{self._greeting}:{self._signal_value or ''}"


@workflow.defn
class EchoWorkflow:
    """The simplest possible workflow: returns its argument."""

    @workflow.run
    async def run(self, value: str) -> str:
        return f"echo:{value}"


@workflow.defn
class WaitForeverWorkflow:
    """Never finishes on its own; tests terminate it."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@workflow.defn
class CountdownWorkflow:
    """Sleeps in short timers until the server suggests continue-as-new, then reports how
    many timers it took."""

    @workflow.run
    async def run(self, limit: int) -> int:
        for done in range(limit):
            if workflow.info().is_continue_as_new_suggested():
                return done
            await workflow.sleep(timedelta(milliseconds=1))
        return -1


@workflow.defn
class GreetOnceWorkflow:
    """Calls `compose_greeting` once, on the workflow's own task queue, and returns it."""

    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            compose_greeting, name, start_to_close_timeout=timedelta(seconds=30)
        )
