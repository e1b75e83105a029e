"""HTTP field parsing shared by the middleware (RFC 9110), pure functions:
content-coding negotiation by ``Accept-Encoding`` q-values (``Compress``
and ``Static``'s precompressed files), HTTP dates, entity-tag lists and
their comparison, the ``Range`` header of a single byte range, and the
order the preconditions of a representation are evaluated in
(:func:`evaluate_preconditions`).

Each rule has a Rust twin in the engine (``crates/http/src/fields.rs``,
``crates/http/src/conditional.rs``) that the native ``--static`` route uses;
both run the cases of ``tests/cases/http_fields.json``.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Sequence
from typing import NamedTuple

from .. import _qiao

#: Longest ``Range`` or ``If-*`` value parsed; longer ones are ignored
#: (a client cannot make the server split an arbitrarily long list). One
#: constant, the engine's (``crates/http/src/limits.rs``).
MAX_FIELD_PARSE = _qiao.MAX_FIELD_PARSE

#: Coding names that mean the same thing (RFC 9110 §8.4.1.3).
CODING_ALIASES = {"x-gzip": "gzip"}

#: The whitespace trimmed around list members and tokens: ASCII's (the
#: engine's ``is_ascii_whitespace``), not ``str.strip``'s, which would take
#: a latin-1 no-break space (0xA0) for one and so read a malformed field.
ASCII_SPACE = " \t\n\f\r"

_ETAG = re.compile(f'[{ASCII_SPACE}]*(W/)?("[^"]*")[{ASCII_SPACE}]*(?:,|$)')
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
    """Seconds since the epoch of an HTTP date in any of its three forms
    (RFC 9110 §5.6.7: IMF-fixdate, RFC 850, asctime), dates before 1970 and
    years 0000-0099 included, or None when absent, malformed or naming no
    real date. Exactly the engine's parser (``crates/http/src/date.rs``): the
    weekday is not checked, month names match without case, an RFC 850
    two-digit year is 1969-1999 from 69, else 20xx. Nothing else is a date
    (no other zone than ``GMT``, no list of dates: RFC 9110 §13.1.3 says a
    field that is not one HTTP-date is ignored)."""
    if not value or len(value) > MAX_FIELD_PARSE or not value.isascii():
        return None
    tokens = [t for t in _SPACES.split(value) if t]
    if len(tokens) == 6 and tokens[0].endswith(",") and len(tokens[3]) == 4:
        if tokens[5] != "GMT":
            return None
        _, day, month, year_s, clock, _ = tokens
        year = _digits(year_s, 4)
    elif len(tokens) == 4 and tokens[0].endswith(","):
        if tokens[3] != "GMT":
            return None
        parts = tokens[1].split("-")
        if len(parts) != 3 or len(parts[2]) != 2:
            return None
        day, month, yy = parts
        year = _digits(yy, 2)
        if year is not None:
            year += 1900 if year > 68 else 2000
        clock = tokens[2]
    elif len(tokens) == 5 and len(tokens[4]) == 4:
        _, month, day, clock, year_s = tokens
        year = _digits(year_s, 4)
    else:
        return None
    month_n = _MONTH_NUMBER.get(month.lower())
    day_n = _digits(day, 2)
    fields = clock.split(":")
    # Three fields of 1-2 digits each (one that is not drops out of hms).
    hms = [n for n in (_digits(t, 2) for t in fields) if n is not None]
    if year is None or month_n is None or day_n is None or len(fields) != 3 or len(hms) != 3:
        return None
    hour, minute, second = hms
    if not 1 <= day_n <= _days_in_month(year, month_n) or hour > 23 or minute > 59 or second > 60:
        return None
    return _days_from_civil(year, month_n, day_n) * 86_400 + hour * 3600 + minute * 60 + second


_SPACES = re.compile(f"[{ASCII_SPACE}]+")
_MONTH_NUMBER = {m.lower(): n for n, m in enumerate(_MONTHS, 1)}


def _digits(text: str, most: int) -> int | None:
    """1 to ``most`` ASCII digits as a number, else None."""
    if not 0 < len(text) <= most or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, year 0 too
    (``calendar.timegm`` goes through ``datetime``, whose years start at 1)."""
    y = year - 1 if month <= 2 else year
    era, yoe = divmod(y, 400)
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def parse_etags(value: str) -> str | list[tuple[bool, str]]:
    """``"*"``, or the ``(weak, opaque-tag)`` pairs of an ``If-Match`` /
    ``If-None-Match`` list (a malformed list yields what parsed before the
    error, which can only make a conditional request fail to match)."""
    value = value[:MAX_FIELD_PARSE].strip(ASCII_SPACE)
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
    if not sep or unit.strip(ASCII_SPACE).lower() != "bytes" or "," in spec:
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


#: :func:`evaluate_preconditions` results, besides ``(first, last)`` (206)
#: and :data:`UNSATISFIABLE` (416): send the whole representation (200), the
#: client's copy is current (304), a precondition does not hold (412).
FULL = "full"
NOT_MODIFIED = "not_modified"
PRECONDITION_FAILED = "precondition_failed"
#: Methods that only read: a met ``If-None-Match`` answers them 304 (any
#: other method 412), and only they heed ``If-Modified-Since`` (RFC 9110
#: §13.1.3). ``Range`` is heeded by GET alone (§14.2).
READ_METHODS = ("GET", "HEAD")


class Conditions(NamedTuple):
    """A request's conditional fields and ``Range``, as sent (None: absent;
    several lines of one field joined by ``", "``). Present but empty is
    present: an empty ``If-Match`` matches nothing."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_unmodified_since: str | None = None
    range: str | None = None
    if_range: str | None = None


def _listed(field: str, etag: str | None, *, weak: bool) -> bool:
    """Whether an ``If-Match``/``If-None-Match`` list names the representation.
    ``*`` names any current one, tagged or not (RFC 9110 §13.1.1, §13.1.2):
    the file exists, so it matches with no tag sent."""
    if etag is None:
        return isinstance(parse_etags(field), str)
    return etag_matches(field, etag, weak=weak)


def evaluate_preconditions(
    method: str, req: Conditions, etag: str | None, mtime: int, size: int
) -> str | tuple[int, int]:
    """RFC 9110 §13.2.2, steps 1 to 6, for a representation with entity tag
    ``etag`` (None: none is sent, so no tag condition but ``*`` matches it),
    ``Last-Modified`` of ``mtime`` (whole seconds since the epoch, earlier
    than 1970 too) and ``size`` bytes: :data:`FULL`, ``(first, last)``,
    :data:`NOT_MODIFIED`, :data:`PRECONDITION_FAILED` or :data:`UNSATISFIABLE`.

    1. ``If-Match`` (strong comparison) fails: 412. Absent, then
    2. ``If-Unmodified-Since`` (a valid date) earlier than ``mtime``: 412.
    3. ``If-None-Match`` (weak comparison) matches: 304 to a read, else 412.
       Absent, then
    4. ``If-Modified-Since`` (a valid date, reads only) at or after ``mtime``: 304.
    5. A GET with ``Range`` whose ``If-Range`` is absent or names this very
       representation (a strong tag, or exactly ``mtime``): 206 or 416.
    6. Otherwise 200.

    A malformed field never fails a request: a date that does not parse is
    absent, an entity-tag list matches nothing past its error, and a
    ``Range`` that does not parse asks for the whole."""
    if req.if_match is not None:
        if not _listed(req.if_match, etag, weak=False):
            return PRECONDITION_FAILED
    else:
        since = parse_http_date(req.if_unmodified_since)
        if since is not None and mtime > since:
            return PRECONDITION_FAILED
    read = method in READ_METHODS
    if req.if_none_match is not None:
        current = _listed(req.if_none_match, etag, weak=True)
    else:
        since = parse_http_date(req.if_modified_since) if read else None
        current = since is not None and mtime <= since
    if current:
        return NOT_MODIFIED if read else PRECONDITION_FAILED
    if method != "GET" or not _if_range_holds(req.if_range, etag, mtime):
        return FULL
    wanted = parse_range(req.range, size)
    return FULL if wanted is None else wanted


def _if_range_holds(value: str | None, etag: str | None, mtime: int) -> bool:
    """``If-Range`` absent, or naming this very representation (RFC 9110
    §13.1.5): a strong entity tag, or the exact ``Last-Modified`` date. A
    weak tag never does (a range of another version would be spliced in)."""
    if value is None:
        return True
    value = value.strip(ASCII_SPACE)
    if value.startswith(('"', "W/")):
        return etag is not None and etag_matches(value, etag, weak=False)
    return parse_http_date(value) == mtime
