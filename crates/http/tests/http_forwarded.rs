//! `http::forwarded`: trusted-proxy lists and what forwarding headers say
//! about the client, as table tests on raw header values.

use qiao_http::forwarded::{
    forwarded_element, ForwardedFields, HeaderFamily, Origin, TrustedProxies,
};

fn trusted(spec: &str) -> TrustedProxies {
    TrustedProxies::parse(spec).unwrap()
}

#[test]
fn trusted_lists_match_addresses_and_ranges() {
    let t = trusted("127.0.0.1, 10.0.0.0/8 fd00::/8,::1");
    for (ip, expected) in [
        ("127.0.0.1", true),
        ("127.0.0.2", false),
        ("10.200.3.4", true),
        ("11.0.0.1", false),
        ("::1", true),
        ("fd12::5", true),
        ("fe80::1", false),
        ("::ffff:10.1.2.3", true), // IPv4-mapped counts as the IPv4 address
    ] {
        assert_eq!(t.contains(ip.parse().unwrap()), expected, "{ip}");
    }
    assert!(trusted("*").contains("8.8.8.8".parse().unwrap()));
    // `*` trusts the peer, not the addresses written in the list: the
    // nearest entry is the client.
    let (client, _, _) = origin(&trusted("*"), &[], &["6.6.6.6, 203.0.113.7"], &[], &[]);
    assert_eq!(client, Some("203.0.113.7"));
    assert!(trusted("").is_empty());
    assert!(trusted("0.0.0.0/0").contains("1.2.3.4".parse().unwrap()));
    for bad in ["localhost", "10.0.0.0/33", "::1/129", "1.2.3"] {
        assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
    }
}

/// (client, proto, host) as text.
type Said<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);
/// (X-Forwarded-For, -Proto, -Host values, expected).
type XCase<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], Said<'a>);

fn origin<'a>(
    t: &TrustedProxies,
    forwarded: &[&'a str],
    x_for: &[&'a str],
    x_proto: &[&'a str],
    x_host: &[&'a str],
) -> Said<'a> {
    let b = |v: &[&'a str]| v.iter().map(|s| s.as_bytes()).collect::<Vec<_>>();
    let f = ForwardedFields {
        forwarded: b(forwarded),
        x_for: b(x_for),
        x_proto: b(x_proto),
        x_host: b(x_host),
    };
    let Origin {
        client,
        proto,
        host,
    } = f.origin(t);
    let s = |v: Option<&'a [u8]>| v.map(|b| std::str::from_utf8(b).unwrap());
    (s(client), s(proto), s(host))
}

#[test]
fn x_forwarded_headers_are_read_from_the_right_skipping_trusted_hops() {
    let t = trusted("127.0.0.1,10.0.0.0/8");
    #[rustfmt::skip]
    let cases: &[XCase] = &[
        (&["203.0.113.7"], &["https"], &["example.com"],
         (Some("203.0.113.7"), Some("https"), Some("example.com"))),
        // The client's own (spoofed) entry is further left: ignored.
        (&["6.6.6.6, 203.0.113.7"], &[], &[], (Some("203.0.113.7"), None, None)),
        // Trusted hops on the right are skipped.
        (&["203.0.113.7, 10.1.1.1", "10.2.2.2"], &[], &[], (Some("203.0.113.7"), None, None)),
        // All trusted: the leftmost is the client.
        (&["10.0.0.5, 10.0.0.6"], &[], &[], (Some("10.0.0.5"), None, None)),
        // Ports and IPv6 brackets.
        (&["[2001:db8::1]:4711"], &[], &[], (Some("2001:db8::1"), None, None)),
        (&["198.51.100.1:8080"], &[], &[], (Some("198.51.100.1"), None, None)),
        (&["2001:db8::2"], &[], &[], (Some("2001:db8::2"), None, None)),
        // Garbage is ignored, not trusted.
        (&["not-an-ip"], &["gopher"], &["bad host/"], (None, None, None)),
        (&[""], &["HTTPS"], &["a.example:8443"], (None, Some("HTTPS"), Some("a.example:8443"))),
        // Lists of proto/host: the nearest (rightmost) value.
        (&[], &["http, https"], &["a.example, b.example"], (None, Some("https"), Some("b.example"))),
    ];
    for (x_for, x_proto, x_host, expected) in cases {
        assert_eq!(
            origin(&t, &[], x_for, x_proto, x_host),
            *expected,
            "{x_for:?}"
        );
    }
}

#[test]
fn forwarded_is_read_when_asked_and_parsed_by_rfc_7239() {
    let t = trusted("127.0.0.1,10.0.0.0/8").with_family(HeaderFamily::Forwarded);
    #[rustfmt::skip]
    let cases: &[(&[&str], Said)] = &[
        (&["for=192.0.2.60;proto=https;host=example.com"],
         (Some("192.0.2.60"), Some("https"), Some("example.com"))),
        (&[r#"for="[2001:db8:cafe::17]:4711";proto=http"#],
         (Some("2001:db8:cafe::17"), Some("http"), None)),
        // Several elements and fields: trusted hops from the right skipped.
        (&["for=6.6.6.6, for=192.0.2.43;proto=https", "for=10.9.9.9"],
         (Some("192.0.2.43"), Some("https"), None)),
        // Case-insensitive names, spaces around separators.
        (&["For=192.0.2.1 ; Proto=HTTPS ; Host=\"a.example\""],
         (Some("192.0.2.1"), Some("HTTPS"), Some("a.example"))),
        // unknown / obfuscated identifiers give no address.
        (&["for=unknown;proto=https"], (None, Some("https"), None)),
        (&["for=_hidden"], (None, None, None)),
        // A quoted comma does not split elements.
        (&[r#"for=192.0.2.9;host="a,b""#], (Some("192.0.2.9"), None, Some("a,b"))),
    ];
    for (fwd, expected) in cases {
        // X-Forwarded-* are ignored when Forwarded is the family read.
        assert_eq!(
            origin(&t, fwd, &["1.1.1.1"], &["http"], &["x.example"]),
            *expected,
            "{fwd:?}"
        );
    }
}

#[test]
fn long_lists_are_bounded() {
    let t = trusted("10.0.0.0/8");
    let many = vec!["10.0.0.1"; 1000].join(", ");
    let value = format!("203.0.113.9, {many}");
    // Only the last MAX_FORWARDED_HOPS entries are read: all trusted, so
    // the leftmost of those is taken, never the far-left entry.
    let (client, _, _) = origin(&t, &[], &[&value], &[], &[]);
    assert_eq!(client, Some("10.0.0.1"));
}

#[test]
fn one_family_is_read_never_both() {
    // Behind nginx: it adds X-Forwarded-For and passes the client's own
    // Forwarded through. By default only X-Forwarded-* count.
    let spoof = ["for=6.6.6.6;proto=https;host=evil.com"];
    let t = trusted("127.0.0.1");
    assert_eq!(
        origin(&t, &spoof, &["203.0.113.7"], &[], &[]),
        (Some("203.0.113.7"), None, None)
    );
    assert_eq!(origin(&t, &spoof, &[], &[], &[]), (None, None, None));
    // Asked for Forwarded: X-Forwarded-* say nothing.
    let f = t.clone().with_family(HeaderFamily::Forwarded);
    assert_eq!(
        origin(&f, &[], &["6.6.6.6"], &["https"], &["evil.com"]),
        (None, None, None)
    );
    assert_eq!(
        HeaderFamily::parse("Forwarded"),
        Ok(HeaderFamily::Forwarded)
    );
    assert_eq!(
        HeaderFamily::parse("x-forwarded"),
        Ok(HeaderFamily::XForwarded)
    );
    assert!(HeaderFamily::parse("both").is_err());
}

#[test]
fn admits_unix_peers_only_when_someone_is_trusted() {
    assert!(trusted("127.0.0.1").admits(None));
    assert!(!trusted("").admits(None));
    assert!(trusted("127.0.0.1").admits(Some("127.0.0.1".parse().unwrap())));
    assert!(!trusted("127.0.0.1").admits(Some("10.0.0.1".parse().unwrap())));
    assert!(trusted("*").admits(Some("10.0.0.1".parse().unwrap())));
}

#[test]
fn forwarded_elements_written_by_a_proxy_read_back() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, &str)] = &[
        ("203.0.113.7", "https", "example.com:8443",
         r#"for=203.0.113.7;proto=https;host="example.com:8443""#),
        ("2001:db8::1", "http", "", r#"for="[2001:db8::1]";proto=http"#),
        ("", "http", "a\"b", r#"for=unknown;proto=http;host="a\"b""#),
    ];
    let t = trusted("*").with_family(HeaderFamily::Forwarded);
    for &(client, proto, host, expected) in cases {
        let mut out = Vec::new();
        forwarded_element(client, proto, host.as_bytes(), &mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
        let (c, p, _) = origin(&t, &[expected], &[], &[], &[]);
        assert_eq!(c, (!client.is_empty()).then_some(client));
        assert_eq!(p, Some(proto));
    }
}
