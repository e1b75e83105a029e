"""The portable Proxy's upstream policy (``qiao.middleware._upstream_policy``)
against the one table of cases the native proxy's
``crates/native/src/upstream/policy.rs`` runs too (``tests/cases/upstream.json``; its
Rust twin is ``crates/native/tests/native_upstream_cases.rs``): two implementations, one
expected answer per step, on a fake clock. Also the health probe's reading of an
answer (``upstream.health_status``), from a real socket."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from qiao.middleware import _upstream_policy as policy
from qiao.middleware import proxy, upstream

pytestmark = pytest.mark.qiao_only("Qiao's own middleware functions")

TABLE = json.loads((Path(__file__).resolve().parents[1] / "cases" / "upstream.json").read_text())


def ids(cases: list[dict], drop: str = "want") -> list[str]:
    return [json.dumps({k: v for k, v in c.items() if k != drop}) for c in cases]


def test_defaults():
    d = TABLE["defaults"]
    assert policy.Policy(1).balance == d["balance"]
    assert list(policy.BALANCERS) == d["balancers"]
    with pytest.raises(ValueError):
        policy.Policy(1, "random")
    assert policy.MAX_FAILS == upstream.MAX_FAILS == d["max_fails"]
    assert policy.PROBE_INTERVAL == upstream.PROBE_INTERVAL == d["probe_interval"]
    assert policy.PROBE_FAILING_STATUS == d["probe_failing_status"]
    assert policy.PROBE_MAX_INTERIM == d["probe_max_interim"]
    assert upstream.CONNECT_TIMEOUT == d["connect_timeout"]
    assert proxy.TIMEOUT == d["timeout"]
    assert proxy.STALE_RETRIES == d["stale_retries"]
    assert sorted(policy.IDEMPOTENT) == sorted(d["idempotent"])


def step_states(p: policy.Policy) -> list[list]:
    return [[h.state.value, h.active, h.failures] for h in p.health]


def prober_does(step: policy.Wait | policy.Probe | policy.Stop) -> object:
    if isinstance(step, policy.Wait):
        return {"wait": step.seconds}
    if isinstance(step, policy.Probe):
        return {"probe": list(step.servers)}
    return "stop"


SCENARIOS = TABLE["scenarios"]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(scenario):
    p = policy.Policy(
        scenario["upstreams"],
        scenario.get("balance", "round_robin"),
        scenario.get("max_fails", policy.MAX_FAILS),
        scenario.get("probe_interval", policy.PROBE_INTERVAL),
    )
    clock = 0.0
    for step in scenario["steps"]:
        do, want = step["do"], step.get("want")
        if do == "pick":
            assert p.pick(set(step.get("tried", []))) == want, step
        elif do == "release":
            starts = p.release(step["server"], step["ok"], clock)
            assert starts == step.get("starts_prober", False), step
        elif do == "wait":
            clock += step["seconds"]
        elif do == "prober":
            got = prober_does(p.probe_step(clock))
            if isinstance(want, dict) and "wait" in want:
                want = {"wait": pytest.approx(want["wait"])}
            assert got == want, step
        elif do == "probed":
            p.probed(step["server"], step["up"])
        elif do == "probes_over":
            p.probes_over(clock)
        elif do == "states":
            assert step_states(p) == want, step
        else:
            raise AssertionError(f"unknown step {do!r}")


@pytest.mark.parametrize("case", TABLE["after_failure"], ids=ids(TABLE["after_failure"]))
def test_after_failure(case):
    failed = policy.Failed(case["failure"])
    got = policy.after_failure(failed, case["method"], case["body"])
    assert got.value == case["want"]


@pytest.mark.parametrize("case", TABLE["probe_status"], ids=ids(TABLE["probe_status"], "up"))
def test_probe_status(case):
    assert policy.probe_status_up(case["status"]) is case["up"]


def health_of(answer: str) -> int | None:
    """The status the probe reads from ``answer``, sent by a server that
    then ends the connection (after reading the probe's request head)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve():
            conn, _ = listener.accept()
            with conn:
                head = b""
                while not head.endswith(b"\r\n\r\n") and (byte := conn.recv(1)):
                    head += byte
                conn.sendall(answer.encode("latin-1"))
                conn.shutdown(socket.SHUT_WR)
                conn.recv(1)  # open until the probe is done reading (no reset)

        server = threading.Thread(target=serve)
        server.start()
        with socket.create_connection(listener.getsockname(), timeout=5) as s:
            status = upstream.health_status(s, "up:1", "/health")
        server.join()
    return status


HEALTH = TABLE["health_answers"]


@pytest.mark.parametrize("case", HEALTH, ids=[c["name"] for c in HEALTH])
def test_health_answers(case):
    assert health_of(case["answer"]) == case["status"]
