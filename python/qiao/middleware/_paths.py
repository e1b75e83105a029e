"""Where a request path really points, for :class:`~qiao.middleware.Proxy`:
RFC 3986 §5.2.4 dot-segment removal, and the rule that keeps what is
forwarded below the route (the same rule as the native proxy's
``crates/http/src/path.rs``, whose module doc says why).

The server hands ``PATH_INFO`` over with its dot segments, and ``Mount``
matches prefixes on it as it is, so ``/ng/../secret`` is mounted at
``/ng``; an upstream resolving the dots itself would serve ``/secret``,
outside the base path. nginx resolves them before it picks a location;
here :func:`below_prefix` refuses such a path (404: nginx would not have
routed it to this location; 400 when it climbs above ``/``, as nginx
answers), and what it lets through has no dot segment left.

Two readings of the raw path are checked, since an upstream may use
either: segments as sent, ``%2e`` decoded (``%2F`` does not split), and the
whole path decoded (``..%2F..`` is two dot segments). A decoded path's
literal ``%2e`` counts as a dot too: stricter than needed, it only refuses
double-encoded dots, themselves a known attack.
"""

from __future__ import annotations

from urllib.parse import unquote

#: The answers to a path that escapes (status line, body).
ABOVE_ROOT = ("400 Bad Request", "Bad Request: the path climbs above the root\n")
OUTSIDE_PREFIX = ("404 Not Found", "Not Found\n")


class PathEscape(ValueError):
    """The request's path resolves outside the route: answer ``answer``."""

    def __init__(self, answer: tuple[str, str]):
        super().__init__(answer[0])
        self.status, self.text = answer


def _dot(segment: str) -> str | None:
    """``"."`` or ``".."`` if ``segment`` is one once ``%2e`` is decoded."""
    plain = segment.lower().replace("%2e", ".")
    return plain if plain in (".", "..") else None


def remove_dot_segments(path: str) -> str | None:
    """``path`` (absolute or empty) without dot segments; None where a
    ``..`` would climb above the root (which RFC 3986 silently drops)."""
    if not path.startswith("/"):
        return path
    kept: list[str] = []
    trailing = False
    for segment in path[1:].split("/"):
        dot = _dot(segment)
        trailing = dot is not None
        if dot == "..":
            if not kept:
                return None
            kept.pop()
        elif dot is None:
            kept.append(segment)
    out = "".join("/" + s for s in kept)
    return out + "/" if trailing or not kept else out


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/") or not prefix


def below_prefix(full: str, prefix: str, rest: str) -> str:
    """The raw path to forward below the base path, dot segments removed.
    ``full``: the request's path, decoded; ``prefix``: where the proxy is
    mounted; ``rest``: the raw path below it. Raises :class:`PathEscape`."""
    resolved = remove_dot_segments(full)
    if resolved is None:
        raise PathEscape(ABOVE_ROOT)
    if not _under(resolved, prefix):
        raise PathEscape(OUTSIDE_PREFIX)
    kept = remove_dot_segments(rest)
    if kept is None or remove_dot_segments(unquote(kept, encoding="latin-1")) is None:
        raise PathEscape(OUTSIDE_PREFIX)
    return kept if rest else ""
