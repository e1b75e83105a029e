#!/usr/bin/env python3
"""Fails when modules of one Rust crate import each other in a cycle.

The compiler keeps the crates' layers apart (a crate cannot use one that
depends on it); inside a crate only this check does. A module here is a
file's module path cut to two levels under a ring (`io::service`,
`io::event_loop`, with `io::event_loop::job` counted as
`io::event_loop`), and an edge is any `crate::`/`super::` path or
re-export in its code (comments and doc links are not code). Tests
(`#[cfg(test)]` modules in their own files, `tests.rs`) are left out: they
may reach back into their parent.

    python3 scripts/module-cycles.py            # every crate of the workspace
    python3 scripts/module-cycles.py --graph    # and print the edges
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPTH = 2
PATH = re.compile(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super)::\{([^}]*)\}")


def crate_roots() -> list[Path]:
    roots = [ROOT / "src"]
    roots += sorted(p / "src" for p in (ROOT / "crates").glob("*") if (p / "src").is_dir())
    return roots


def module_of(src: Path, file: Path) -> list[str]:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts.pop()
    return parts


def code_lines(text: str) -> str:
    out = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("//"):
            continue
        out.append(line.split(" //")[0])
    return "\n".join(out)


def cut(path: list[str]) -> str:
    return "::".join(path[:DEPTH])


def edges(src: Path) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for file in sorted(src.rglob("*.rs")):
        mod = module_of(src, file)
        if "tests" in mod:
            continue
        here = cut(mod)
        graph.setdefault(here, set())
        text = code_lines(file.read_text())
        is_dir_module = file.name in ("mod.rs", "lib.rs")
        for kind, rest in PATH.findall(text):
            names = [n for n in rest.split("::") if n]
            if kind == "crate":
                target = names
            else:
                base = mod if is_dir_module else mod[:-1]
                while names and names[0] == "super":
                    names.pop(0)
                    base = base[:-1]
                target = base + names
            # A path to an item (`crate::io::EventLoop`) names its module.
            target = [n for n in target if n[:1].islower()]
            if target and cut(target) != here:
                graph[here].add(cut(target))
    known = set(graph)
    return {m: {t for t in ts if t in known} for m, ts in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    bad = 0
    for src in crate_roots():
        graph = edges(src)
        if "--graph" in sys.argv:
            for m in sorted(graph):
                print(f"{src.parent.name}: {m or '(root)'} -> {', '.join(sorted(graph[m]))}")
        for comp in cycles(graph):
            bad += 1
            print(f"{src.relative_to(ROOT)}: modules in a cycle: {' <-> '.join(comp)}")
    if bad:
        return 1
    print(f"no module cycles in {len(crate_roots())} crate(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
