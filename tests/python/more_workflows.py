"""Workflows for test_updates.py, test_ids_and_metadata.py and test_eager_start.py, kept out
of the test modules: the SDK's sandbox re-imports a workflow's module to validate it, and a
test module (rewritten by pytest) sometimes trips CPython 3.11's AST recursion check there."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy


@workflow.defn
class Carrier:
    """Answers the update `ping`: the run that answers says which run it is."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update
    async def ping(self) -> str:
        return f"answered by {workflow.info().run_id}"


@workflow.defn
class Child:
    @workflow.run
    async def run(self) -> str:
        return "done"


@workflow.defn
class ReusesAChildId:
    @workflow.run
    async def run(self, child_id: str) -> str:
        await workflow.execute_child_workflow(Child.run, id=child_id)
        try:
            await workflow.execute_child_workflow(
                Child.run, id=child_id, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE
            )
        except Exception as err:  # the SDK's WorkflowAlreadyStartedError
            return type(err).__name__
        return "started twice"


@workflow.defn
class Greeter:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"Hello, {name}!"


@workflow.defn
class Quitter:
    """Completes as soon as its update handler has started; the update never finishes."""

    def __init__(self) -> None:
        self.handler_started = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.handler_started)
        return "quit"

    @workflow.update
    async def hang(self) -> str:
        self.handler_started = True
        await workflow.wait_condition(lambda: False)
        return "unreachable"
