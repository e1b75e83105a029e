//! The native proxy's upstream policy (`qiao_native::upstream::policy`)
//! against the one table of cases the portable middleware's
//! `_upstream_policy.py` runs too (`tests/cases/upstream.json`; its Python
//! twin is `tests/e2e/test_upstream_cases.py`): two implementations, one
//! expected answer per step, on a fake clock. Also the health probe's
//! reading of an answer (`upstream::health_status`), from a real socket.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use qiao_native::proxy::{STALE_RETRIES, TIMEOUT};
use qiao_native::upstream::policy::{
    after_failure, probe_status_up, AfterFailure, Balance, Failed, Policy, ProbeStep, State,
    Verdict, IDEMPOTENT, MAX_FAILS, PROBE_FAILING_STATUS, PROBE_INTERVAL, PROBE_MAX_INTERIM,
};
use qiao_native::upstream::{health_status, CONNECT_TIMEOUT};
use serde_json::{json, Value};

#[path = "../../http/tests/common/json_table.rs"]
mod json_table;

fn table() -> Value {
    json_table::table("upstream.json")
}

fn cases(name: &str) -> Vec<Value> {
    json_table::cases("upstream.json", name)
}

fn secs(v: &Value) -> Duration {
    Duration::from_secs_f64(v.as_f64().expect("seconds"))
}

fn index(v: &Value) -> usize {
    v.as_u64().expect("a server index") as usize
}

#[test]
fn defaults() {
    let d = &table()["defaults"];
    let balance = d["balance"].as_str().unwrap();
    assert_eq!(Balance::parse(balance), Some(Balance::RoundRobin));
    for name in d["balancers"].as_array().unwrap() {
        assert!(Balance::parse(name.as_str().unwrap()).is_some(), "{name}");
    }
    assert_eq!(Balance::parse("random"), None);
    assert_eq!(u64::from(MAX_FAILS), d["max_fails"].as_u64().unwrap());
    assert_eq!(PROBE_INTERVAL, secs(&d["probe_interval"]));
    assert_eq!(u64::from(PROBE_FAILING_STATUS), d["probe_failing_status"]);
    assert_eq!(PROBE_MAX_INTERIM as u64, d["probe_max_interim"]);
    assert_eq!(CONNECT_TIMEOUT, secs(&d["connect_timeout"]));
    assert_eq!(TIMEOUT, secs(&d["timeout"]));
    assert_eq!(STALE_RETRIES as u64, d["stale_retries"]);
    let idempotent: Vec<String> = IDEMPOTENT
        .iter()
        .map(|m| String::from_utf8(m.to_vec()).unwrap())
        .collect();
    assert_eq!(json!(idempotent), d["idempotent"]);
}

/// Runs one scenario's steps; panics naming the scenario and the step
/// whose answer differs.
fn run(scenario: &Value) {
    let name = &scenario["name"];
    let balance = scenario["balance"].as_str().unwrap_or("round_robin");
    let max_fails = scenario["max_fails"]
        .as_u64()
        .map_or(MAX_FAILS, |n| n as u32);
    let interval = match &scenario["probe_interval"] {
        Value::Null => PROBE_INTERVAL,
        v => secs(v),
    };
    let servers = index(&scenario["upstreams"]);
    let mut policy = Policy::new(
        servers,
        Balance::parse(balance).expect("a balance"),
        max_fails,
        interval,
    );
    let origin = Instant::now();
    let mut clock = 0.0;
    for step in scenario["steps"].as_array().expect("steps") {
        let now = origin + Duration::from_secs_f64(clock);
        let want = &step["want"];
        let at = format!("{name}: {step}");
        match step["do"].as_str().expect("a step") {
            "pick" => {
                let tried: Vec<usize> = match &step["tried"] {
                    Value::Null => Vec::new(),
                    v => v.as_array().unwrap().iter().map(index).collect(),
                };
                let got = policy.pick(&tried);
                assert_eq!(got, want.as_u64().map(|i| i as usize), "{at}");
            }
            "release" => {
                let verdict = match step["ok"] {
                    Value::Bool(true) => Verdict::Success,
                    Value::Bool(false) => Verdict::Failure,
                    _ => Verdict::Neither,
                };
                let starts = policy.release(index(&step["server"]), verdict, now);
                let want_starts = step["starts_prober"].as_bool().unwrap_or(false);
                assert_eq!(starts, want_starts, "{at}");
            }
            "wait" => clock += step["seconds"].as_f64().expect("seconds"),
            "prober" => match (policy.probe_step(now), want) {
                (ProbeStep::Stop, Value::String(s)) if s == "stop" => {}
                (ProbeStep::Wait(d), w) if w["wait"].is_number() => {
                    let diff = d.as_secs_f64() - w["wait"].as_f64().unwrap();
                    assert!(diff.abs() < 1e-6, "{at}: waits {d:?}");
                }
                (ProbeStep::Probe(down), w) if w["probe"].is_array() => {
                    assert_eq!(json!(down), w["probe"], "{at}");
                }
                (got, _) => panic!("{at}: the prober does {got:?}"),
            },
            "probed" => {
                let up = step["up"].as_bool().expect("up");
                policy.probed(index(&step["server"]), up);
            }
            "probes_over" => policy.probes_over(now),
            "states" => {
                let got: Vec<Value> = policy
                    .health()
                    .iter()
                    .map(|h| {
                        let state = if h.state == State::Up { "up" } else { "down" };
                        json!([state, h.active, h.failures])
                    })
                    .collect();
                assert_eq!(&json!(got), want, "{at}");
            }
            other => panic!("{name}: unknown step {other:?}"),
        }
    }
}

#[test]
fn scenarios() {
    for scenario in cases("scenarios") {
        run(&scenario);
    }
}

#[test]
fn retry_after_failure() {
    for c in cases("after_failure") {
        let failed = match c["failure"].as_str().unwrap() {
            "not_sent" => Failed::NotSent,
            "sent" => Failed::Sent,
            "timed_out" => Failed::TimedOut,
            other => panic!("bad failure {other}"),
        };
        let method = c["method"].as_str().unwrap().as_bytes();
        let got = match after_failure(failed, method, c["body"].as_bool().unwrap()) {
            AfterFailure::TryAnother => "try_another",
            AfterFailure::BadGateway => "bad_gateway",
            AfterFailure::GatewayTimeout => "gateway_timeout",
        };
        assert_eq!(got, c["want"], "{c}");
    }
}

#[test]
fn probe_answers() {
    for c in cases("probe_status") {
        let status = c["status"].as_u64().unwrap() as u16;
        assert_eq!(probe_status_up(status), c["up"].as_bool().unwrap(), "{c}");
    }
}

/// The status the probe reads from `answer`, sent by a server that then
/// ends the connection (after reading the probe's request head).
fn health_of(answer: &str) -> Option<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = answer.as_bytes().to_vec();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let _ = conn.write_all(&answer);
        let _ = conn.shutdown(Shutdown::Write);
        // Kept open until the probe is done reading (no reset).
        let _ = conn.read(&mut byte);
    });
    let stream = TcpStream::connect(addr).unwrap();
    let status = health_status(stream, "up:1", "/health", Duration::from_secs(5));
    server.join().unwrap();
    status
}

#[test]
fn health_answers() {
    for c in cases("health_answers") {
        let want = c["status"].as_u64().map(|s| s as u16);
        assert_eq!(health_of(c["answer"].as_str().unwrap()), want, "{c}");
    }
}
