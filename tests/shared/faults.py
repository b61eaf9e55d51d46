"""Faults after an API write, and a queue that redelivers what a delivery put back or a crash left: for the
crash-point tests on fakes (docs/design.md, "Crash safety")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tagger.errors import LeaseStoreUnavailable
from tests.shared.fakes import FakeApi, FakeLeaseStore, FakePublisher, Rig, put_backs

COMPLETION = "c1"


class Crash(BaseException):
    """The container is killed: no handler code runs after this point."""


@dataclass
class AfterWrite:
    """Makes the calls after the API write of one delivery fail from position `k` on.

    kind: "fail" (publish refused, store unavailable), "crash-before" (killed before the call),
    "crash-after" (killed once the call has taken effect).
    """

    api: FakeApi
    k: int
    kind: str
    armed: bool = False
    baseline: int = 0
    position: int = 0
    struck: list[str] = field(default_factory=list)

    def arm(self) -> None:
        self.armed, self.baseline, self.position = True, self.api.writes(COMPLETION), 0

    def disarm(self) -> None:
        self.armed = False

    def call(self, name: str, real: Callable[[], Any], failed: Callable[[], Any]) -> Any:
        if not self.armed or self.api.writes(COMPLETION) == self.baseline:
            return real()
        position, self.position = self.position, self.position + 1
        if position < self.k:
            return real()
        self.struck.append(name)
        if self.kind == "crash-before":
            raise Crash(name)
        if self.kind == "crash-after":
            real()
            raise Crash(name)
        return failed()


class FaultyPublisher(FakePublisher):
    def __init__(self, faults: Callable[[], AfterWrite]) -> None:
        super().__init__()
        self.faults = faults

    def publish(self, detail: Any) -> bool:
        return bool(self.faults().call("publish", lambda: super(FaultyPublisher, self).publish(detail), lambda: False))


class FaultyLeaseStore(FakeLeaseStore):
    def __init__(self, faults: Callable[[], AfterWrite]) -> None:
        super().__init__()
        self.faults = faults

    def release(self, *args: Any, **kwargs: Any) -> None:
        def unavailable() -> None:
            raise LeaseStoreUnavailable("could not update the completion's lease (InternalServerError)")

        self.faults().call("release", lambda: super(FaultyLeaseStore, self).release(*args, **kwargs), unavailable)

    def extend(self, *args: Any, **kwargs: Any) -> None:
        def unavailable() -> None:
            raise LeaseStoreUnavailable("could not update the completion's lease (InternalServerError)")

        self.faults().call("extend", lambda: super(FaultyLeaseStore, self).extend(*args, **kwargs), unavailable)


class Queue:
    """A queue of one completion's messages, each delivered in a batch of its own until it ends."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.waiting: list[dict[str, Any]] = []
        self.dead_lettered: list[str] = []

    def deliver(self, record: dict[str, Any], faults: AfterWrite | None = None) -> None:
        """One delivery; what it puts back (or a crash leaves) waits in the queue."""
        if faults:
            faults.arm()
        try:
            response, _ = self.rig.run([record])
            ended = record["messageId"] not in put_backs(response)
        except Crash:
            ended = False
        finally:
            if faults:
                faults.disarm()
        for leased in self.rig.lease_store.leases:
            self.rig.lease_store.expire(leased)  # time passes: every lease runs out before the next delivery
        self.waiting.extend(self.rig.requeue.as_records())
        if ended:
            return
        count = int(record["attributes"]["ApproximateReceiveCount"])
        if count >= self.rig.max_receive_count:
            self.dead_lettered.append(record["messageId"])
            return
        record["attributes"]["ApproximateReceiveCount"] = str(count + 1)
        self.waiting.append(record)

    def drain(self) -> None:
        for _ in range(20):
            if not self.waiting:
                return
            self.deliver(self.waiting.pop(0))
        raise AssertionError("the queue never drained")
