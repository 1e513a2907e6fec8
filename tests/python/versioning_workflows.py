"""Two versions of the same workflows, as a team would ship them: each version's worker
registers its own code under the same workflow names. `Rollout` is pinned (a run stays on
the version it started on); `Upgrading` is auto-upgrade (a run moves to the current version
at its next workflow task). Each answers which version ran it."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ApplicationError


class _Waiting:
    """Waits for `finish`; the query `version` says which code runs the workflow."""

    VERSION = ""

    def __init__(self) -> None:
        self.done = False

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def version(self) -> str:
        return self.VERSION

    async def wait_then_answer(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return self.VERSION


@workflow.defn(name="Rollout", versioning_behavior=VersioningBehavior.PINNED)
class RolloutV1(_Waiting):
    VERSION = "v1"

    @workflow.run
    async def run(self) -> str:
        return await self.wait_then_answer()


@workflow.defn(name="Rollout", versioning_behavior=VersioningBehavior.PINNED)
class RolloutV2(_Waiting):
    VERSION = "v2"

    @workflow.run
    async def run(self) -> str:
        return await self.wait_then_answer()


@workflow.defn(name="Upgrading", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class UpgradingV1(_Waiting):
    VERSION = "v1"

    @workflow.run
    async def run(self) -> str:
        return await self.wait_then_answer()


@workflow.defn(name="Upgrading", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class UpgradingV2(_Waiting):
    VERSION = "v2"

    @workflow.run
    async def run(self) -> str:
        return await self.wait_then_answer()


@workflow.defn(name="Gate", versioning_behavior=VersioningBehavior.PINNED)
class GateV1:
    """A smoke test a rollout runs on a new version before it takes traffic."""

    @workflow.run
    async def run(self, check: str) -> str:
        return f"{check} passed on v1"


@workflow.defn(name="Gate", versioning_behavior=VersioningBehavior.PINNED)
class GateV2:
    @workflow.run
    async def run(self, check: str) -> str:
        return f"{check} passed on v2"


@workflow.defn(name="Gate", versioning_behavior=VersioningBehavior.PINNED)
class GateBroken:
    @workflow.run
    async def run(self, check: str) -> str:
        raise ApplicationError(f"{check} failed", non_retryable=True)


V1_WORKFLOWS = [RolloutV1, UpgradingV1, GateV1]
V2_WORKFLOWS = [RolloutV2, UpgradingV2, GateV2]
# A build whose smoke test fails: a rollout with a gate never sends it traffic.
BROKEN_WORKFLOWS = [RolloutV2, UpgradingV2, GateBroken]
