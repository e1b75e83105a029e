"""What gunicorn's settings mean for Qiao's own, once every source is read.

gunicorn settings that name the same thing as a Qiao setting are aliases
in the table and need nothing here. These are the ones whose meaning is
carried over by changing other settings:

- ``worker_class``: ``sync`` serves one request at a time per worker, so
  ``--threads`` is 1 unless given (apps deployed that way may not be
  thread-safe); ``gthread``'s ceiling is ``--threads`` (1 unless given, as in
  gunicorn); ``gevent``, ``eventlet`` and ``tornado`` are served by Qiao's
  pool, with a warning. ASGI classes were refused when the value was read.
- ``http_protocols``: HTTP/2 on when it names ``h2``, off when it does not.
- ``protocol = uwsgi``: every bind speaks uwsgi (``uwsgi://`` prefix).
- every setting of :mod:`qiao.settings.unused` that was set: one info
  line with what Qiao does instead.
- an access log format with atoms gunicorn does not know: written as
  ``-`` (gunicorn's way), with a warning.
"""

from __future__ import annotations

from .config import SETTINGS, Setting
from .config_sources import DEFAULT_SOURCE, Resolved
from .settings.server import DEFAULT_BIND

#: Worker classes whose apps may not be thread-safe: one thread unless
#: --threads says otherwise.
ONE_THREAD_CLASSES = ("sync", "gthread")
UWSGI_PREFIX = "uwsgi://"


def _named(s: Setting) -> str:
    long = [f for f in s.flags if f.startswith("--")]
    return long[-1] if long else (s.gunicorn_name or s.name)


def apply(resolved: Resolved) -> None:
    """Changes ``resolved`` in place: values that follow from gunicorn
    settings, and the notes and warnings that say so."""
    values, sources = resolved.values, resolved.sources

    def given(name: str) -> bool:
        return sources[name] != DEFAULT_SOURCE

    kind = values["worker_class"]
    if kind in ONE_THREAD_CLASSES and not given("threads"):
        values["threads"], sources["threads"] = 1, f"worker class {kind}"
        resolved.notes.append(
            f"Worker class {kind}: one request at a time per worker (--threads 1); "
            "without -k, Qiao's pool grows threads only while requests block"
        )
    elif kind and kind not in ONE_THREAD_CLASSES:
        resolved.warnings.append(
            f"Worker class {kind}: served by Qiao's thread pool (up to {values['threads']} "
            f"threads per worker) instead of {kind}'s event loop"
        )
    if given("http_protocols") and not given("http2"):
        values["http2"] = "h2" in values["http_protocols"].split(",")
        sources["http2"] = sources["http_protocols"]
    if values["protocol"] == "uwsgi":
        binds = values["bind"] or [DEFAULT_BIND]
        values["bind"] = [b if b.startswith(UWSGI_PREFIX) else UWSGI_PREFIX + b for b in binds]
    if values["access_log"]:
        from .accesslog import compile_format

        unknown = compile_format(values["access_log_format"]).unknown
        if unknown:
            resolved.warnings.append(
                f"access log format: {', '.join(unknown)} is no atom; written as '-' "
                "(as gunicorn does)"
            )
    for s in SETTINGS:
        if s.ignored and given(s.name):
            resolved.notes.append(f"{_named(s)} has no effect in Qiao: {s.ignored}")


def environment(raw_env: list[str] | None) -> dict[str, str]:
    """``--env KEY=VALUE`` items as a mapping (ValueError names a bad one)."""
    pairs: dict[str, str] = {}
    for item in raw_env or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--env {item!r}: expected KEY=VALUE")
        pairs[key.strip()] = value
    return pairs
