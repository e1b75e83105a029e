"""What :class:`~qiao.middleware.Proxy` asks an upstream for, as pure
functions of the environ: the request target (the path below
``SCRIPT_NAME``, raw as the client sent it when the server says how, dot
segments removed, refused if it resolves outside (``_paths.py``), then the
query string) and the rules its headers follow (hop-by-hop fields dropped,
the ``Forwarded`` element it adds).

Apart from ``proxy.py``, which sends the request, retries and streams the
answer, because none of this touches a socket: it is the part the tests
call directly (``request_target``); its native twin is
``crates/native/src/proxy/request.rs``. ``Proxy`` builds its header list
with these rules (``Proxy._request_headers``, which needs its
``preserve_host``); ``proxy.py`` imports the names back, so
``from qiao.middleware.proxy import request_target`` still works.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import quote

from ._paths import below_prefix
from .static import raw_path

#: Fields that concern one connection, never forwarded (RFC 9110 §7.6.1),
#: plus those named in ``Connection``. ``Expect`` is the server's business:
#: it has answered ``100 Continue`` already when the body is read.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
#: Characters left as they are when a decoded path must be quoted again.
PATH_SAFE = "/:@!$&'()*+,;=-._~"


def forwarded_element(client: str, proto: str, host: str) -> str:
    """One RFC 7239 ``Forwarded`` element for a request this proxy forwards
    (the engine's ``forwarded_element``): the client's own ``Forwarded`` is
    dropped, as its ``X-Forwarded-Proto/-Host`` are, so an application
    reading ``Forwarded`` sees only what this proxy says."""
    try:
        ip = ipaddress.ip_address(client)
    except ValueError:
        node = "unknown"
    else:
        node = f'"[{client}]"' if ip.version == 6 else client
    element = f"for={node};proto={proto}"
    if host:
        quoted = host.replace("\\", "\\\\").replace('"', '\\"')
        element += f';host="{quoted}"'
    return element


def connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    return {
        t.strip().lower() for k, v in headers if k.lower() == "connection" for t in v.split(",")
    }


def _raw_rest(raw: str, script: str, path: str) -> str | None:
    """The part of the raw path ``raw`` that decodes to ``path``, if ``raw``
    decodes to ``script + path`` (the server's decoding: ``%XX`` → a byte)."""
    want, decoded, i, cut = (script + path).encode("latin-1"), bytearray(), 0, None
    while True:
        if cut is None and len(decoded) == len(script):
            cut = i
        if i >= len(raw):
            break
        token = raw[i : i + 3]
        if len(token) == 3 and token[0] == "%" and _is_hex(token[1:]):
            decoded.append(int(token[1:], 16))
            i += 3
        else:
            decoded += raw[i].encode("latin-1", "replace")
            i += 1
    return raw[cut:] if cut is not None and bytes(decoded) == want else None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def confined_rest(environ: dict) -> str:
    """The path below ``SCRIPT_NAME`` to forward: undecoded when
    ``RAW_URI``/``REQUEST_URI`` allows (so ``%2F`` stays ``%2F``), without
    dot segments. Raises :class:`PathEscape` if it resolves outside."""
    script, path = environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", "")
    raw = raw_path(environ)
    rest = _raw_rest(raw, script, path) if raw is not None else None
    if rest is None:
        rest = quote(path.encode("latin-1"), safe=PATH_SAFE)
    return below_prefix(script + path, script, rest)


def request_target(environ: dict, base_path: str) -> str:
    """The upstream's request target: ``base_path``, then the path below
    ``SCRIPT_NAME`` (:func:`confined_rest`), then the query string."""
    target = base_path + confined_rest(environ) or "/"
    query = environ.get("QUERY_STRING")
    return f"{target}?{query}" if query else target
