"""Settings of TLS (rustls) and HTTP/2."""

from __future__ import annotations

import argparse

from .base import Setting, section

#: Client certificate policies of ``--cert-reqs``, by Qiao's names; gunicorn
#: gives them as ssl.VerifyMode numbers (0, 1, 2), taken in the same order.
CERT_REQS = ("none", "optional", "required")


def cert_reqs(text: str) -> str:
    word = text.strip().lower()
    if word.isdigit() and int(word) < len(CERT_REQS):
        return CERT_REQS[int(word)]
    word = word.removeprefix("cert_")
    if word not in CERT_REQS:
        raise argparse.ArgumentTypeError(
            f"unknown cert_reqs {text!r} (choose from {', '.join(CERT_REQS)}, or 0, 1, 2)"
        )
    return word


def http_protocols(text: str) -> str:
    """gunicorn's comma-separated h1/h2 list."""
    items = [p.strip().lower() for p in text.split(",") if p.strip()]
    bad = [p for p in items if p not in ("h1", "h2")]
    if not items or bad:
        raise argparse.ArgumentTypeError(f"expected a list of h1 and h2, got {text!r}")
    return ",".join(items)


SETTINGS = section(
    "TLS and HTTP/2",
    (
        Setting(
            "certfile",
            ("--certfile",),
            None,
            "Serve TLS (https) on every TCP --bind with this PEM certificate chain; "
            "uwsgi:// and unix: binds stay plaintext.",
            metavar="FILE",
        ),
        Setting(
            "keyfile",
            ("--keyfile",),
            None,
            "The PEM private key of --certfile (default: read from --certfile itself).",
            metavar="FILE",
        ),
        Setting(
            "ca_certs",
            ("--ca-certs",),
            None,
            "PEM CA certificates that client certificates are verified with (see --cert-reqs).",
            metavar="FILE",
        ),
        Setting(
            "cert_reqs",
            ("--cert-reqs",),
            "none",
            "Client certificates: none (not asked for), optional (verified when sent) or "
            "required (the handshake fails without one); gunicorn's 0, 1, 2 mean the same. "
            "Needs --ca-certs unless none.",
            type=cert_reqs,
            metavar="POLICY",
        ),
        Setting(
            "http2",
            ("--http2",),
            True,
            "HTTP/2: offered by ALPN on TLS binds, and served in cleartext to clients with "
            "prior knowledge (h2c) on HTTP binds. On by default; --no-http2 turns it off.",
            type=None,
            action="store_true",
            gunicorn=False,
        ),
        Setting(
            "http_protocols",
            ("--http-protocols",),
            None,
            "gunicorn's protocol list: HTTP/2 is served when it names h2 (as --http2), "
            "and not when it names only h1 (as --no-http2).",
            type=http_protocols,
            metavar="h1,h2",
        ),
    ),
)
