"""The upstream policy of a :class:`~qiao.middleware.Proxy` without I/O: which
server gets the next request, how failures mark one down and a success or a
probe brings it back, when the down ones are probed, and whether a failed
request goes on to another server. Nothing here connects, sleeps or reads a
clock: the time is a parameter (``now``, seconds of ``time.monotonic()``),
so a test drives it with a fake clock.

The native proxy has the same rules in ``crates/native/src/upstream/policy.rs``; one
table of cases (``tests/cases/upstream.json``) runs against both
(``tests/e2e/test_upstream_cases.py``, ``crates/native/tests/native_upstream_cases.rs``).

The rules, as an nginx ``upstream`` block with ``max_fails`` and a health
check would have them:

* the next server is the first in turn after the last one picked (round
  robin), or among those the fewest requests in flight, ties in turn (least
  connections); servers this request already tried never;
* servers that are up come first; when none left is, a down one still gets
  the request (it may have recovered since its last probe) rather than none;
* :data:`MAX_FAILS` consecutive failures mark a server down; any success
  marks it up and clears its failures;
* once a server is down, a prober looks at the down servers every
  ``probe_interval`` (counted from the end of the previous round) and a probe
  that succeeds marks one up; the prober ends at a round that finds nothing
  down;
* a request whose upstream failed goes to another one only if it is safe to
  send again (:func:`after_failure`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: Consecutive failures after which an upstream is marked down (nginx's
#: ``max_fails`` default). Fewer than one is taken as one: an upstream that
#: can never be marked down would take its share of requests forever.
MAX_FAILS = 1
#: Seconds between two probes of a down upstream: often enough to bring it
#: back soon, rarely enough not to load one that is struggling.
PROBE_INTERVAL = 5.0
#: Status from which a health probe's answer counts as a failure: a 404 still
#: shows a server that answers, a 5xx one that is not well.
PROBE_FAILING_STATUS = 500
#: Interim (1xx) heads a health probe skips before the final one; past them
#: the probe fails (an upstream that only ever says "wait" is not up).
PROBE_MAX_INTERIM = 8
#: Methods that may be sent twice (RFC 9110 §9.2.2).
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
#: How a server is picked: each in turn, or the fewest requests in flight
#: (ties in turn).
BALANCERS = ("round_robin", "least_conn")


class State(enum.Enum):
    """Whether a server gets requests."""

    #: Picked in its turn.
    UP = "up"
    #: Failed :data:`MAX_FAILS` times in a row: picked only when no server
    #: left is up, until a success or a probe marks it up.
    DOWN = "down"


class Failed(enum.Enum):
    """How sending a request to an upstream failed."""

    #: No connection: nothing was sent.
    NOT_SENT = "not_sent"
    #: Sent (some of it at least), then lost, or the answer was not HTTP.
    SENT = "sent"
    #: Sent, and no answer came within the timeout.
    TIMED_OUT = "timed_out"


class AfterFailure(enum.Enum):
    """What a request does after its upstream failed."""

    #: Go to a server not tried yet (a 502 if none is left).
    TRY_ANOTHER = "try_another"
    #: Answer 502 now: sending it again might run it twice.
    BAD_GATEWAY = "bad_gateway"
    #: Answer 504: the upstream has the request and may still be working on
    #: it, so another one must not get it too.
    GATEWAY_TIMEOUT = "gateway_timeout"


def after_failure(failed: Failed, method: str, has_body: bool) -> AfterFailure:
    """Whether a request whose upstream failed goes on to another one: when
    nothing was sent, always; after sending, only an idempotent method
    without a body (a POST that reached an upstream never runs twice); after
    a timeout, never."""
    if failed is Failed.TIMED_OUT:
        return AfterFailure.GATEWAY_TIMEOUT
    if failed is Failed.SENT and not (method in IDEMPOTENT and not has_body):
        return AfterFailure.BAD_GATEWAY
    return AfterFailure.TRY_ANOTHER


def probe_status_up(status: int) -> bool:
    """Whether a health probe answered with ``status`` finds its server up."""
    return status < PROBE_FAILING_STATUS


@dataclass
class Health:
    """One server's health."""

    state: State = State.UP
    #: Requests in flight.
    active: int = 0
    #: Failures since the last success.
    failures: int = 0


@dataclass(frozen=True)
class Wait:
    """The prober sleeps this long, then asks again."""

    seconds: float


@dataclass(frozen=True)
class Probe:
    """The prober probes these servers (the down ones), reports each with
    :meth:`Policy.probed`, then calls :meth:`Policy.probes_over`."""

    servers: tuple[int, ...]


@dataclass(frozen=True)
class Stop:
    """Nothing is down: the prober ends."""


class Policy:
    """The health of the servers behind one proxy and the choices made from
    it. Not thread-safe: its owner holds a lock around each call."""

    def __init__(
        self,
        servers: int,
        balance: str = "round_robin",
        max_fails: int = MAX_FAILS,
        probe_interval: float = PROBE_INTERVAL,
    ):
        if balance not in BALANCERS:
            raise ValueError(f"balance must be one of {BALANCERS}, not {balance!r}")
        self.balance = balance
        self.max_fails = max(1, max_fails)
        self.probe_interval = probe_interval
        self.health = [Health() for _ in range(servers)]
        self._next = 0  # round-robin cursor: where the next search starts
        # When the prober next looks at the down servers; None while none runs.
        self._probe_at: float | None = None

    def pick(self, tried: set[int] | list[int]) -> int | None:
        """Picks a server not in ``tried`` and counts a request on it; None
        when every server was tried."""
        n = len(self.health)
        untried = [i for i in ((self._next + k) % n for k in range(n)) if i not in tried]
        candidates = [i for i in untried if self.health[i].state is State.UP] or untried
        if not candidates:
            return None
        if self.balance == "least_conn":
            index = min(candidates, key=lambda i: self.health[i].active)
        else:
            index = candidates[0]
        self._next = (index + 1) % n
        self.health[index].active += 1
        return index

    def release(self, index: int, ok: bool | None, now: float) -> bool:
        """The request on server ``index`` is over at ``now``: ``ok`` True is a
        success (it answered, whatever its status), False a failure, None
        neither (the client went away). True when this marked the first
        server down and a prober must be started."""
        h = self.health[index]
        h.active = max(0, h.active - 1)
        if ok:
            h.failures, h.state = 0, State.UP
        elif ok is False:
            h.failures += 1
            if h.failures >= self.max_fails and h.state is State.UP:
                h.state = State.DOWN
                if self._probe_at is None:
                    self._probe_at = now + self.probe_interval
                    return True
        return False

    def probe_step(self, now: float) -> Wait | Probe | Stop:
        """What the prober does at ``now``."""
        if self._probe_at is None:
            return Stop()
        if now < self._probe_at:
            return Wait(self._probe_at - now)
        down = tuple(i for i, h in enumerate(self.health) if h.state is State.DOWN)
        if not down:
            self._probe_at = None
            return Stop()
        return Probe(down)

    def probed(self, index: int, up: bool) -> None:
        """The probe of server ``index`` found it ``up`` (or not: it stays
        down, its failures as they were)."""
        if up:
            self.health[index].state, self.health[index].failures = State.UP, 0

    def probes_over(self, now: float) -> None:
        """A round of probes ended at ``now``: the next is one interval later."""
        self._probe_at = now + self.probe_interval

    def prober_gone(self) -> None:
        """The prober could not be started: the next server marked down tries
        again."""
        self._probe_at = None
