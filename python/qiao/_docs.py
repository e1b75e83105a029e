"""The parts of ``docs/`` that are generated from the settings table, so
they cannot drift from the code: the option reference
(``docs/configuration.md``) and the settings and hooks tables of
``docs/migrating-from-gunicorn.md``.

A generated part sits between ``<!-- BEGIN GENERATED: NAME -->`` and
``<!-- END GENERATED: NAME -->`` lines; the prose around it is written by
hand. ``python -m qiao._docs`` rewrites the parts in place;
``python -m qiao._docs --check`` (run by the test suite) fails when a file
is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable

from .config import SETTINGS, Setting
from .settings.base import DICT, HOOK
from .settings.hooks import HOOKS

#: The files with generated parts, relative to the repository root.
FILES = ("docs/configuration.md", "docs/migrating-from-gunicorn.md")
_BLOCK = re.compile(
    r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n)(?P<body>.*?)"
    r"(<!-- END GENERATED: (?P=name) -->)",
    re.S,
)


def _value(value) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        return f"`{value}`" if value else "`''`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def _flags(s: Setting) -> str:
    flags = [f"`{f}`" for f in s.flags]
    if s.is_flag:
        flags += [f"`--no-{f[2:]}`" for f in s.flags if f.startswith("--")][:1]
    return ", ".join(flags) or "(config file only)"


def _metavar(s: Setting) -> str:
    if s.is_flag or s.action in ("store_const", HOOK, DICT) or not s.flags:
        return ""
    return f" {s.metavar or 'VALUE'}"


def reference() -> str:
    """Every setting that has a meaning in Qiao, by section."""
    out: list[str] = []
    section = None
    for s in SETTINGS:
        if s.ignored or s.action == HOOK:
            continue
        if s.section != section:
            section = s.section
            out.append(f"### {section}\n")
        title = ", ".join(f"`{f}{_metavar(s)}`" for f in s.flags) or f"`{s.name}` (files only)"
        out.append(f"#### {title}\n")
        facts = [f"setting `{s.name}`", f"default {_value(s.default)}"]
        if not s.python_only:
            facts.append(f"env `{s.env_var}`")
        if s.gunicorn_name:
            facts.append(f"gunicorn `{s.gunicorn_name}`")
        if s.is_list:
            facts.append("repeatable")
        out.append(" · ".join(facts) + "\n")
        out.append(s.help + "\n")
    return "\n".join(out)


def gunicorn_settings() -> str:
    """Every gunicorn setting and what Qiao does with it."""
    rows = ["| gunicorn setting | flags Qiao accepts | in Qiao |", "|---|---|---|"]
    for s in sorted(SETTINGS, key=lambda s: s.gunicorn_name or ""):
        if not s.gunicorn_name or s.action == HOOK:
            continue
        if s.ignored:
            meaning = f"accepted, no effect (logged once): {s.ignored}"
        elif s.gunicorn_name != s.name:
            meaning = f"the same as Qiao's `{s.name}`"
        else:
            meaning = "the same"
        rows.append(f"| `{s.gunicorn_name}` | {_flags(s)} | {meaning} |")
    return "\n".join(rows) + "\n"


def gunicorn_hooks() -> str:
    rows = ["| hook | arguments | called |", "|---|---|---|"]
    for name, (args, when) in HOOKS.items():
        rows.append(f"| `{name}` | `{', '.join(args)}` | {when} |")
    for s in SETTINGS:
        if s.action == HOOK and s.ignored:
            rows.append(f"| `{s.name}` | | accepted, never called: {s.ignored} |")
    return "\n".join(rows) + "\n"


def qiao_only() -> str:
    """Qiao's settings gunicorn does not have."""
    rows = []
    for s in SETTINGS:
        if s.gunicorn_name is None:
            rows.append(f"- {_flags(s)}: {s.help}")
    return "\n".join(rows) + "\n"


BLOCKS: dict[str, Callable[[], str]] = {
    "reference": reference,
    "gunicorn-settings": gunicorn_settings,
    "gunicorn-hooks": gunicorn_hooks,
    "qiao-only": qiao_only,
}


def render(text: str) -> str:
    """``text`` with each generated block made anew."""

    def fill(m: re.Match) -> str:
        return m.group(1) + BLOCKS[m.group("name")]() + m.group(4)

    return _BLOCK.sub(fill, text)


def main(argv: list[str]) -> int:
    root = Path(argv[argv.index("--root") + 1]) if "--root" in argv else Path.cwd()
    stale = []
    for name in FILES:
        path = root / name
        text = path.read_text()
        new = render(text)
        if new != text:
            stale.append(name)
            if "--check" not in argv:
                path.write_text(new)
    if stale and "--check" in argv:
        print(f"stale: {', '.join(stale)} (run python -m qiao._docs)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
