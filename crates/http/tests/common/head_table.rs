//! The head tables: a case is a name, raw bytes and what parsing them must
//! give (fields of the head to check, an error and its status, or a
//! partial head), checked in every feeding mode.

use qiao_http::{Framing, Limits, ParseError, Version};

use super::{head_all_ways, Parsed};

/// One field of the parsed head to check.
#[derive(Debug)]
pub enum C {
    M(&'static str),
    P(&'static str),
    Q(&'static str),
    T(&'static str),
    A(Option<&'static str>),
    Host(Option<&'static str>),
    V(Version),
    F(Framing),
    Ka(bool),
    Ec(bool),
    /// head_len; without it the whole input must be the head.
    Hl(usize),
    H(&'static [(&'static str, &'static str)]),
}

pub enum Want {
    Ok(&'static [C]),
    Err(ParseError, u16),
    Partial,
}

pub type Case = (&'static str, &'static [u8], Want);

pub fn check(name: &str, raw: &[u8], want: &Want, limits: &Limits) {
    let got = head_all_ways(raw, limits);
    match (want, got) {
        (Want::Err(e, status), got) => {
            assert_eq!(got, Err(*e), "{name}");
            assert_eq!(e.status(), *status, "{name}: status of {e:?}");
        }
        (Want::Partial, got) => assert_eq!(got, Ok(None), "{name}"),
        (Want::Ok(checks), Ok(Some(p))) => verify(name, raw, &p, checks),
        (Want::Ok(_), got) => panic!("{name}: expected a head, got {got:?}"),
    }
}

fn verify(name: &str, raw: &[u8], p: &Parsed, checks: &[C]) {
    use C::*;
    if !checks.iter().any(|c| matches!(c, Hl(_))) {
        assert_eq!(p.head_len, raw.len(), "{name}: head_len");
    }
    for c in checks {
        let ok = match c {
            M(m) => p.method == *m,
            P(s) => p.path == *s,
            Q(s) => p.query == *s,
            T(s) => p.target == *s,
            A(a) => p.authority.as_deref() == *a,
            Host(h) => p.host.as_deref() == *h,
            V(v) => p.version == *v,
            F(f) => p.framing == *f,
            Ka(k) => p.keep_alive == *k,
            Ec(e) => p.expect_continue == *e,
            Hl(n) => p.head_len == *n,
            H(hs) => hs
                .iter()
                .map(|&(n, v)| (n.into(), v.into()))
                .eq(p.headers.clone()),
        };
        assert!(ok, "{name}: {c:?} does not hold for {p:#?}");
    }
}

/// Runs every case, then fails listing all the cases that failed.
#[allow(
    clippy::print_stdout,
    reason = "a test's summary line, shown with --nocapture"
)]
pub fn run(cases: &[Case], limits: &Limits) {
    let fails = |(name, raw, want): &&Case| {
        std::panic::catch_unwind(|| check(name, raw, want, limits)).is_err()
    };
    let failed: Vec<&str> = cases.iter().filter(fails).map(|c| c.0).collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed: {failed:?}",
        failed.len(),
        cases.len()
    );
    println!("{} cases passed", cases.len());
}

pub const fn err(e: ParseError, status: u16) -> Want {
    Want::Err(e, status)
}
