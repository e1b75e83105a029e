"""Settings of what a request may be (the parser's limits) and whom Qiao
trusts to speak for the client (proxies, PROXY headers)."""

from __future__ import annotations

from .base import Setting, choice, ip_list, positive_int, section

#: Whose forwarding headers count by default: no one's. gunicorn trusts
#: this machine (127.0.0.1,::1) for the scheme; Qiao's forwarding headers
#: also set the client address and host, and trust comes only from peers
#: the operator names (the migration guide says so).
NO_ONE = ""

#: Who may speak a proxy protocol (PROXY headers, uwsgi) by default: this
#: machine, as gunicorn.
LOCALHOST = "127.0.0.1,::1"

#: The forwarding-header families --forwarded-headers chooses from: one is
#: read, never both (a proxy rewrites its own family and passes the other
#: through from the client).
FORWARDED_FAMILIES = ("x-forwarded", "forwarded")


#: gunicorn 24+'s values of --proxy-protocol (gunicorn 23 had a bare flag);
#: Qiao reads v1 and v2 whichever is sent.
PROXY_PROTOCOL_WORDS = (("off", False), ("auto", True), ("v1", True), ("v2", True))


SETTINGS = section(
    "Limits and trust",
    (
        Setting(
            "limit_request_line",
            ("--limit-request-line",),
            8190,
            "Longest request line in bytes (longer: 414); 0: no limit of its own, as gunicorn "
            "(the whole head stays under 1 MiB).",
            type=positive_int,
            metavar="N",
        ),
        Setting(
            "limit_request_fields",
            ("--limit-request-fields",),
            100,
            "Most header fields in a request (more: 431); 0 or more than 32768: 32768.",
            type=positive_int,
            metavar="N",
        ),
        Setting(
            "limit_request_field_size",
            ("--limit-request-field-size", "--limit-request-field_size"),
            8190,
            "Longest header field line in bytes (longer: 431); 0: no limit of its own, as "
            "gunicorn (the whole head stays under 1 MiB).",
            type=positive_int,
            metavar="N",
        ),
        Setting(
            "max_body",
            ("--max-body-size",),
            None,
            "Largest request body in bytes (larger: 413). Off by default.",
            type=positive_int,
            metavar="N",
            gunicorn=False,
        ),
        Setting(
            "forwarded_allow_ips",
            ("--forwarded-allow-ips",),
            NO_ONE,
            "Proxies (addresses or CIDR ranges, comma-separated; '*' for any) whose "
            "X-Forwarded-For/-Proto/-Host headers (or Forwarded, see --forwarded-headers) set "
            "REMOTE_ADDR, wsgi.url_scheme and the host. Default: $FORWARDED_ALLOW_IPS when "
            "set, else no one (gunicorn trusts 127.0.0.1,::1: name your proxy, e.g. "
            "127.0.0.1).",
            type=ip_list,
            metavar="LIST",
        ),
        Setting(
            "forwarded_headers",
            ("--forwarded-headers",),
            "x-forwarded",
            "Which forwarding headers a --forwarded-allow-ips proxy's requests are read for: "
            "x-forwarded (X-Forwarded-For/-Proto/-Host, as gunicorn, uvicorn and Werkzeug's "
            "ProxyFix) or forwarded (RFC 7239 Forwarded). Never both: a proxy passes the "
            "other family through from the client.",
            type=choice(*FORWARDED_FAMILIES),
            metavar="FAMILY",
            gunicorn=False,
        ),
        Setting(
            "proxy_protocol",
            ("--proxy-protocol",),
            False,
            "Every connection starts with HAProxy's PROXY v1/v2 header naming the client "
            "(REMOTE_ADDR/REMOTE_PORT); accepted only from --proxy-allow-from peers. "
            "gunicorn's --proxy-protocol off|v1|v2|auto is accepted too.",
            type=None,
            action="store_true",
            words=PROXY_PROTOCOL_WORDS,
        ),
        Setting(
            "proxy_allow_ips",
            ("--proxy-allow-from",),
            LOCALHOST,
            "Peers (addresses or CIDR ranges, comma-separated; '*' for any) that may send "
            "PROXY headers; others are refused (400). A Unix-socket peer is allowed unless "
            "the list is empty. The client a PROXY header names is the peer for every later "
            "decision: its X-Forwarded-* count only if it is in --forwarded-allow-ips.",
            type=ip_list,
            metavar="LIST",
        ),
        Setting(
            "uwsgi_allow_ips",
            ("--uwsgi-allow-from",),
            LOCALHOST,
            "Peers (addresses or CIDR ranges, comma-separated; '*' for any) that may connect "
            "to a uwsgi:// bind (they set REMOTE_ADDR, REMOTE_USER, HTTPS...); others are "
            "closed at once and logged at warning. A Unix-socket peer is allowed unless the "
            "list is empty.",
            type=ip_list,
            metavar="LIST",
        ),
    ),
)
