//! The upstream policy without I/O: which server gets the next request,
//! how failures mark one down and a success or a probe brings it back,
//! when the down ones are probed, and whether a failed request goes on to
//! another server. Nothing here connects, sleeps or reads a clock: the
//! time is a parameter (`now`), so a test drives it with a fake clock.
//!
//! The portable `Proxy` has the same rules in
//! `python/qiao/middleware/_upstream_policy.py`; one table of cases
//! (`tests/cases/upstream.json`) runs against both
//! (`crates/native/tests/native_upstream_cases.rs`, `tests/e2e/test_upstream_cases.py`).
//!
//! The rules, as an nginx `upstream` block with `max_fails` and a health
//! check would have them:
//!
//! - the next server is the first in turn after the last one picked
//!   (round robin), or among those the fewest requests in flight, ties in
//!   turn (least connections); servers this request already tried never;
//! - servers that are up come first; when none left is, a down one still
//!   gets the request (it may have recovered since its last probe) rather
//!   than none at all;
//! - [`MAX_FAILS`] consecutive failures mark a server down; any success
//!   marks it up and clears its failures;
//! - once a server is down, a prober looks at the down servers every
//!   `probe_interval` (counted from the end of the previous round) and a
//!   probe that succeeds marks one up; the prober ends at a round that
//!   finds nothing down;
//! - a request whose upstream failed goes to another one only if it is
//!   safe to send again ([`after_failure`]).

use std::time::{Duration, Instant};

/// Consecutive failures after which an upstream is marked down (nginx's
/// `max_fails` default). Fewer than one is taken as one: an upstream that
/// can never be marked down would take its share of requests forever.
pub const MAX_FAILS: u32 = 1;
/// Time between two probes of a down upstream: often enough to bring it
/// back soon, rarely enough not to load one that is struggling.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// Status from which a health probe's answer counts as a failure: a 404
/// still shows a server that answers, a 5xx one that is not well.
pub const PROBE_FAILING_STATUS: u16 = 500;
/// Interim (1xx) heads a health probe skips before the final one; past
/// them the probe fails (an upstream that only ever says "wait" is not up).
pub const PROBE_MAX_INTERIM: usize = 8;
/// Methods that may be sent twice (RFC 9110 §9.2.2).
pub const IDEMPOTENT: [&[u8]; 6] = [b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"];

/// How a server is picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    /// Each in turn.
    RoundRobin,
    /// The one with the fewest requests in flight; ties in turn.
    LeastConn,
}

impl Balance {
    pub fn parse(name: &str) -> Option<Balance> {
        match name {
            "round_robin" => Some(Balance::RoundRobin),
            "least_conn" => Some(Balance::LeastConn),
            _ => None,
        }
    }
}

/// Whether a server gets requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum State {
    /// Picked in its turn.
    #[default]
    Up,
    /// Failed [`MAX_FAILS`] times in a row: picked only when no server
    /// left is up, until a success or a probe marks it up.
    Down,
}

/// One server's health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    pub state: State,
    /// Requests in flight.
    pub active: u32,
    /// Failures since the last success.
    pub failures: u32,
}

/// How a request on a server ended, as far as its health goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It answered (whatever its status: a 5xx is the application's).
    Success,
    /// It could not be reached, dropped the request or went silent.
    Failure,
    /// Nothing to say about the server (the client went away, or its body
    /// could not be read).
    Neither,
}

/// What the prober does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeStep {
    /// Sleep this long, then ask again.
    Wait(Duration),
    /// Probe these servers (the down ones), report each with
    /// [`Policy::probed`], then call [`Policy::probes_over`].
    Probe(Vec<usize>),
    /// Nothing is down: the prober ends.
    Stop,
}

/// How sending a request to an upstream failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failed {
    /// No connection: nothing was sent.
    NotSent,
    /// Sent (some of it at least), then the connection was lost or the
    /// answer was not HTTP.
    Sent,
    /// Sent, and no answer came within the timeout.
    TimedOut,
}

/// What a request does after its upstream failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Go to a server not tried yet (a 502 if none is left).
    TryAnother,
    /// Answer 502 now: sending it again might run it twice.
    BadGateway,
    /// Answer 504: the upstream has the request and may still be working
    /// on it, so another one must not get it too.
    GatewayTimeout,
}

/// Whether a request whose upstream failed goes on to another one: when
/// nothing was sent, always; after sending, only an idempotent method
/// without a body (a POST that reached an upstream never runs twice);
/// after a timeout, never.
pub fn after_failure(failed: Failed, method: &[u8], has_body: bool) -> AfterFailure {
    match failed {
        Failed::NotSent => AfterFailure::TryAnother,
        Failed::Sent if IDEMPOTENT.contains(&method) && !has_body => AfterFailure::TryAnother,
        Failed::Sent => AfterFailure::BadGateway,
        Failed::TimedOut => AfterFailure::GatewayTimeout,
    }
}

/// Whether a health probe answered with `status` finds its server up.
pub fn probe_status_up(status: u16) -> bool {
    status < PROBE_FAILING_STATUS
}

/// The health of the servers behind one proxy route and the choices made
/// from it.
#[derive(Debug)]
pub struct Policy {
    balance: Balance,
    max_fails: u32,
    probe_interval: Duration,
    health: Vec<Health>,
    /// Round-robin cursor: where the next search starts.
    next: usize,
    /// When the prober next looks at the down servers; None while no
    /// prober runs.
    probe_at: Option<Instant>,
}

impl Policy {
    pub fn new(servers: usize, balance: Balance, max_fails: u32, probe_interval: Duration) -> Self {
        Policy {
            balance,
            max_fails: max_fails.max(1),
            probe_interval,
            health: vec![Health::default(); servers],
            next: 0,
            probe_at: None,
        }
    }

    pub fn health(&self) -> &[Health] {
        &self.health
    }

    /// Picks a server not in `tried` and counts a request on it; None when
    /// every server was tried.
    pub fn pick(&mut self, tried: &[usize]) -> Option<usize> {
        let n = self.health.len();
        let health = &self.health;
        let untried = (0..n)
            .map(|k| (self.next + k) % n)
            .filter(|i| !tried.contains(i));
        let up = untried.clone().filter(|&i| health[i].state == State::Up);
        let index = match self.balance {
            Balance::RoundRobin => up.clone().next().or_else(|| untried.clone().next()),
            Balance::LeastConn => {
                let fewest = |i: &usize| health[*i].active;
                up.clone()
                    .min_by_key(fewest)
                    .or_else(|| untried.min_by_key(fewest))
            }
        }?;
        self.next = (index + 1) % n;
        self.health[index].active += 1;
        Some(index)
    }

    /// The request on server `index` is over; `now` is when. True when
    /// this marked the first server down and a prober must be started.
    pub fn release(&mut self, index: usize, verdict: Verdict, now: Instant) -> bool {
        let h = &mut self.health[index];
        h.active = h.active.saturating_sub(1);
        match verdict {
            Verdict::Success => {
                h.failures = 0;
                h.state = State::Up;
            }
            Verdict::Failure => {
                h.failures += 1;
                if h.failures >= self.max_fails && h.state == State::Up {
                    h.state = State::Down;
                    if self.probe_at.is_none() {
                        self.probe_at = Some(now + self.probe_interval);
                        return true;
                    }
                }
            }
            Verdict::Neither => {}
        }
        false
    }

    /// What the prober does at `now`.
    pub fn probe_step(&mut self, now: Instant) -> ProbeStep {
        let Some(at) = self.probe_at else {
            return ProbeStep::Stop;
        };
        if now < at {
            return ProbeStep::Wait(at - now);
        }
        let down: Vec<usize> = (0..self.health.len())
            .filter(|&i| self.health[i].state == State::Down)
            .collect();
        if down.is_empty() {
            self.probe_at = None;
            return ProbeStep::Stop;
        }
        ProbeStep::Probe(down)
    }

    /// The probe of server `index` found it `up` (or not: it stays down,
    /// its failures as they were).
    pub fn probed(&mut self, index: usize, up: bool) {
        if up {
            self.health[index] = Health {
                state: State::Up,
                failures: 0,
                ..self.health[index]
            };
        }
    }

    /// A round of probes ended at `now`: the next is one interval later.
    pub fn probes_over(&mut self, now: Instant) {
        self.probe_at = Some(now + self.probe_interval);
    }

    /// The prober could not be started (no thread): the next server marked
    /// down tries again.
    pub(crate) fn prober_gone(&mut self) {
        self.probe_at = None;
    }
}
