"""The shape of one setting, and the value checks the sections share.

A :class:`Setting` is everything Qiao knows about one option: its name, its
command-line flags (Qiao's and gunicorn's spellings side by side), its
default, how its text is checked, and what gunicorn calls it. The sections
of the table (``qiao.settings.server``, ``.logging``...) are lists of them;
:mod:`qiao.config` puts the sections together.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

#: ``Setting.action`` values beyond argparse's own.
HOOK = "hook"  # a callable, from a Python config file only (gunicorn's server hooks)
DICT = "dict"  # a mapping, from a Python config file only (``logconfig_dict``)


@dataclass(frozen=True)
class Setting:
    name: str
    flags: tuple[str, ...]
    default: Any
    help: str
    type: Callable[[str], Any] | None = str
    #: argparse's action (``store_true``, ``append``, ``store_const``), or
    #: :data:`HOOK` / :data:`DICT` for values only a Python file can give.
    action: str | None = None
    metavar: str | None = None
    #: How a list setting given as one string (a ``QIAO_*`` variable or a
    #: TOML string) splits into items: commas or blanks, unless an item can
    #: hold commas itself (``--proxy``: blanks only).
    split: str = r"[,\s]+"
    #: The section of the reference this setting is listed in.
    section: str = ""
    #: gunicorn's name for this setting: ``True`` when it is the same as
    #: ``name``, a string when it differs, ``False`` for Qiao's own settings.
    gunicorn: str | bool = True
    #: For a gunicorn setting that has no meaning in Qiao: what Qiao does
    #: instead. Such a setting is accepted and this is logged once at info.
    ignored: str | None = None
    #: ``store_const``'s value; ``nargs="?"``'s value when the flag is bare.
    const: Any = None
    nargs: str | None = None
    #: For a boolean setting that gunicorn also takes with a word
    #: (``--proxy-protocol v2``): each word and the boolean it means.
    words: tuple[tuple[str, bool], ...] = ()

    def boolean(self, text: str) -> bool:
        """A boolean setting's value from its text (1/0, true/false... or
        one of ``words``)."""
        word = text.strip().lower()
        for known, value in self.words:
            if word == known:
                return value
        return boolean(text)

    @property
    def is_flag(self) -> bool:
        """A boolean setting (``--preload`` / ``--no-preload``)."""
        return self.action == "store_true"

    @property
    def is_list(self) -> bool:
        """A repeatable setting (``--bind``): a list of values."""
        return self.action == "append"

    @property
    def python_only(self) -> bool:
        """Given only by a Python config file (hooks, dictionaries)."""
        return self.action in (HOOK, DICT)

    @property
    def gunicorn_name(self) -> str | None:
        """The name gunicorn gives this setting (None: Qiao's own)."""
        if self.gunicorn is True:
            return self.name
        return self.gunicorn or None

    @property
    def env_var(self) -> str:
        return "QIAO_" + self.name.upper()

    def convert(self, text: str) -> Any:
        """One value from its text (raises ``argparse.ArgumentTypeError``)."""
        return self.type(text) if self.type else text


def section(title: str, settings: tuple[Setting, ...]) -> tuple[Setting, ...]:
    """``settings``, each marked as listed under ``title``."""
    return tuple(dataclasses.replace(s, section=title) for s in settings)


def int_at_least(text: str, least: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive_int(text: str) -> int:
    return int_at_least(text, 0, "an integer >= 0")


def at_least_one(text: str) -> int:
    return int_at_least(text, 1, "an integer >= 1")


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None


def seconds(text: str) -> float:
    """A duration > 0."""
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {value}")
    return value


def seconds_or_zero(text: str) -> float:
    """A duration >= 0 (0 means "at once", as in gunicorn)."""
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {value}")
    return value


def ip_list(text: str) -> str:
    """Addresses or CIDR ranges, comma- or space-separated, or '*'."""
    import ipaddress

    for item in text.replace(",", " ").split():
        if item != "*":
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise argparse.ArgumentTypeError(f"not an IP address or range: {item!r}") from None
    return text


def choice(*choices: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    return check


def boolean(text: str) -> bool:
    """1/0, true/false, yes/no, on/off."""
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (1/0, true/false, yes/no), got {text!r}")


def health_path(text: str) -> str:
    if not text.startswith("/") or any(c in text for c in "?# \t"):
        raise argparse.ArgumentTypeError(f"must be a path starting with /, got {text!r}")
    return text


def anything(text: str) -> str:
    """Any text: the value of a setting Qiao accepts but does not use."""
    return text
