"""Workflows for the reset tests (a plain module: the SDK's sandbox re-imports it)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

# How many times `stamp` ran, by input: a reset to before the activity runs it again.
STAMPS: dict[str, int] = {}


@activity.defn
async def stamp(name: str) -> int:
    STAMPS[name] = STAMPS.get(name, 0) + 1
    return STAMPS[name]


@workflow.defn
class Resettable:
    """Runs one activity, then collects signals until one says "go"."""

    def __init__(self) -> None:
        self.signals: list[str] = []
        self.seeds: list[int] = []
        self.stamped = False

    @workflow.run
    async def run(self, name: str) -> dict:
        workflow.register_random_seed_callback(self.seeds.append)
        ran = await workflow.execute_activity(stamp, name, start_to_close_timeout=timedelta(seconds=10))
        self.stamped = True
        await workflow.wait_condition(lambda: "go" in self.signals)
        return {"ran": ran, "signals": list(self.signals), "reseeded": len(self.seeds)}

    @workflow.signal
    def note(self, text: str) -> None:
        self.signals.append(text)

    @workflow.query
    def ready(self) -> bool:
        return self.stamped


@workflow.defn
class Child:
    """Waits for a `finish` signal and returns what it says."""

    def __init__(self) -> None:
        self.said: str | None = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.said is not None)
        return self.said or ""

    @workflow.signal
    def finish(self, text: str) -> None:
        self.said = text


@workflow.defn
class Parent:
    """Starts one child with a fixed id and returns what the child returned."""

    @workflow.run
    async def run(self, child_id: str) -> str:
        result = await workflow.execute_child_workflow(Child.run, id=child_id)
        return f"parent got {result}"
