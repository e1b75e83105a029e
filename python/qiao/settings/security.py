"""Settings of what a request may be (the parser's limits) and whom Qiao
trusts to speak for the client (proxies, PROXY headers)."""

from __future__ import annotations

import argparse

from .base import Setting, ip_list, positive_int, section

#: gunicorn's default for the peers whose forwarding headers count: only
#: this machine (a proxy in front on the same host).
LOOPBACK = "127.0.0.1,::1"


def proxy_protocol(text: str) -> bool:
    """gunicorn 23's bare flag, or gunicorn 24+'s off/v1/v2/auto (Qiao
    reads v1 and v2 whichever is sent); also true/false from a file."""
    word = text.strip().lower()
    if word in ("off", "false", "no", "0"):
        return False
    if word in ("auto", "v1", "v2", "on", "true", "yes", "1"):
        return True
    raise argparse.ArgumentTypeError(f"expected off, v1, v2 or auto, got {text!r}")


SETTINGS = section(
    "Limits and trust",
    (
        Setting(
            "limit_request_line",
            ("--limit-request-line",),
            8190,
            "Longest request line in bytes (longer: 414).",
            type=positive_int,
            metavar="N",
        ),
        Setting(
            "limit_request_fields",
            ("--limit-request-fields",),
            100,
            "Most header fields in a request (more: 431).",
            type=positive_int,
            metavar="N",
        ),
        Setting(
            "limit_request_field_size",
            ("--limit-request-field-size", "--limit-request-field_size"),
            8190,
            "Longest header field line in bytes (longer: 431).",
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
            LOOPBACK,
            "Proxies (addresses or CIDR ranges, comma-separated; '*' for any; '' for none) "
            "whose Forwarded / X-Forwarded-For/-Proto/-Host headers set REMOTE_ADDR, "
            "wsgi.url_scheme and the host. Default: $FORWARDED_ALLOW_IPS when set, else this "
            "machine only (as gunicorn).",
            type=ip_list,
            metavar="LIST",
        ),
        Setting(
            "proxy_protocol",
            ("--proxy-protocol",),
            False,
            "Every connection starts with HAProxy's PROXY v1/v2 header naming the client "
            "(REMOTE_ADDR/REMOTE_PORT); accepted only from --forwarded-allow-ips peers. "
            "gunicorn's values off, v1, v2 and auto are accepted.",
            type=proxy_protocol,
            nargs="?",
            const=True,
            metavar="off|v1|v2|auto",
        ),
    ),
)
