"""HTTP field parsing shared by the middleware (RFC 9110), pure functions:
content-coding negotiation by ``Accept-Encoding`` q-values (``Compress``
and ``Static``'s precompressed files), HTTP dates, entity-tag lists and
their comparison, and the ``Range`` header of a single byte range.
"""

from __future__ import annotations

import calendar
import email.utils
import functools
import math
import re
import time
from collections.abc import Sequence

#: Longest ``Range`` or ``If-*`` value parsed; longer ones are ignored
#: (a client cannot make the server split an arbitrarily long list).
MAX_FIELD_PARSE = 4096

#: Coding names that mean the same thing (RFC 9110 §8.4.1.3).
CODING_ALIASES = {"x-gzip": "gzip"}

_ETAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')
_BYTE_RANGE = re.compile(r"[ \t]*([0-9]*)-([0-9]*)[ \t]*")


def parse_qlist(value: str) -> dict[str, float]:
    """``"br;q=1.0, gzip;q=0.5, *;q=0"`` → ``{"br": 1.0, "gzip": 0.5, "*": 0.0}``
    (names lower-cased; a malformed q counts as 0, a missing one as 1)."""
    result: dict[str, float] = {}
    for item in value[:MAX_FIELD_PARSE].split(","):
        name, _, params = item.partition(";")
        name = CODING_ALIASES.get(name.strip().lower(), name.strip().lower())
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(val.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        result[name] = max(q, result.get(name, 0.0))
    return result


def choose_coding(accept: str | None, available: Sequence[str]) -> str | None:
    """The content coding to send, of ``available`` (in the server's order of
    preference), given the request's ``Accept-Encoding``; None for identity.

    No header means identity (what clients that send none expect, although
    RFC 9110 would allow any coding). The highest q wins, ties go to the
    earlier of ``available``, ``*`` covers codings not named, q=0 refuses,
    and identity wins only if the client rates it above every coding."""
    if not accept:
        return None
    qs = parse_qlist(accept)
    star = qs.get("*", 0.0)
    best, best_q = None, 0.0
    for coding in available:
        q = qs.get(coding, star)
        if q > best_q:
            best, best_q = coding, q
    if best is not None and qs.get("identity", 0.0) > best_q:
        return None
    return best


#: The dates an HTTP-date can write (four-digit years, RFC 9110 §5.6.7):
#: 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z, in seconds since the epoch.
#: A date before 1970 is written as it is, as the native side does.
MIN_HTTP_DATE = -62_167_219_200
MAX_HTTP_DATE = 253_402_300_799
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(timestamp: float) -> str:
    """``Sun, 06 Nov 1994 08:49:37 GMT`` (IMF-fixdate), clamped to the
    years an HTTP-date can write."""
    return _http_date(min(max(math.floor(timestamp), MIN_HTTP_DATE), MAX_HTTP_DATE))


@functools.lru_cache(maxsize=256)
def _http_date(seconds: int) -> str:
    # Remembered: files' modification times repeat on every request for them.
    # time.gmtime, not email.utils.formatdate: datetime has no year 0.
    t = time.gmtime(seconds)
    return (
        f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def parse_http_date(value: str | None) -> int | None:
    """Seconds since the epoch of an HTTP date (any of the three RFC 9110
    forms), or None when absent or malformed."""
    if not value or len(value) > MAX_FIELD_PARSE:
        return None
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        year, month, day, hour, minute, second = parsed[:6]
        # parsedate_tz takes "32 Nov" and 25:00 as they come (mktime would
        # roll them over): a date that does not exist is malformed, as the
        # engine's parser says (crates/http/src/date.rs).
        if not (
            1 <= month <= 12
            and 1 <= day <= calendar.monthrange(year, month)[1]
            and hour <= 23
            and minute <= 59
            and second <= 60
        ):
            return None
        return int(email.utils.mktime_tz(parsed))
    except (TypeError, ValueError, OverflowError):
        return None


def parse_etags(value: str) -> str | list[tuple[bool, str]]:
    """``"*"``, or the ``(weak, opaque-tag)`` pairs of an ``If-Match`` /
    ``If-None-Match`` list (a malformed list yields what parsed before the
    error, which can only make a conditional request fail to match)."""
    value = value[:MAX_FIELD_PARSE].strip()
    if value == "*":
        return "*"
    tags, pos = [], 0
    while pos < len(value):
        m = _ETAG.match(value, pos)
        if m is None or m.end() == pos:
            break
        tags.append((bool(m.group(1)), m.group(2)))
        pos = m.end()
    return tags


def split_etag(etag: str) -> tuple[bool, str]:
    return (True, etag[2:]) if etag.startswith("W/") else (False, etag)


def etag_matches(header: str | None, etag: str, *, weak: bool) -> bool:
    """Whether ``etag`` is listed in ``header``, by weak comparison (only the
    opaque tags compared: ``If-None-Match``) or strong (both strong and equal:
    ``If-Match``, ``If-Range``)."""
    if header is None:
        return False
    tags = parse_etags(header)
    if isinstance(tags, str):  # "*"
        return True
    mine_weak, mine = split_etag(etag)
    for their_weak, theirs in tags:
        if theirs == mine and (weak or not (their_weak or mine_weak)):
            return True
    return False


#: :func:`parse_range` result: no range can be served (answer 416).
UNSATISFIABLE = "unsatisfiable"


def parse_range(value: str | None, size: int) -> None | str | tuple[int, int]:
    """The byte range a ``Range`` header asks of a ``size``-byte representation:
    ``(first, last)`` inclusive, :data:`UNSATISFIABLE`, or None to ignore the
    header and send everything (absent, another unit, malformed, or several
    ranges: answering those with the whole representation is allowed by
    RFC 9110 §14.2 and spares a multipart/byteranges body)."""
    if not value or len(value) > MAX_FIELD_PARSE:
        return None
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    m = _BYTE_RANGE.fullmatch(spec)
    if m is None:
        return None
    first_s, last_s = m.groups()
    if first_s == "":
        if last_s == "":
            return None
        suffix = int(last_s)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return (max(size - suffix, 0), size - 1)
    first = int(first_s)
    if last_s and int(last_s) < first:
        return None
    if first >= size:
        return UNSATISFIABLE
    return (first, min(int(last_s), size - 1) if last_s else size - 1)
