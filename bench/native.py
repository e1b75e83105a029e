"""Benchmarks of Qiao's native routes against nginx, run by ``bench/run.py
--native static,proxy``; measured the way ``../shared/bench/compare.py``
measures (its ``run_wrk``: wrk pinned to CPU 1, one warm-up second), the
server under test being one process pinned to CPU 0.

Scenarios (each a table of servers answering the same requests):

* ``static``: the same 1 MiB file (``../shared/bench/_1mib.bin``) from
  ``qiao --static`` (native, sendfile, no GIL), from the portable
  ``qiao.middleware.Static`` through ``wsgi.file_wrapper`` and from nginx
  (``sendfile on``). Targets: native ≥ 90% of nginx; portable within 20%
  of native.
* ``proxy``: ``GET /`` through a reverse proxy to the same upstream (an
  nginx answering a fixed 13-byte body, pinned to CPU 1 beside wrk), by
  ``qiao --proxy`` and by nginx ``proxy_pass`` with upstream keep-alive
  (``keepalive 64``, HTTP/1.1), its fastest configuration. Target: native
  ≥ nginx.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
#: URL prefix every static server serves the file directory under.
STATIC_PREFIX = "/static"
#: Body of the proxy scenario's upstream.
HELLO = "Hello, World!"


def load_compare(path: str):
    """``compare.py`` as a module, for its ``run_wrk`` and helpers."""
    spec = importlib.util.spec_from_file_location("bench_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nginx_conf(work: str, server_block: str) -> str:
    path = os.path.join(work, f"nginx-{abs(hash(server_block))}.conf")
    with open(path, "w") as f:
        f.write(
            textwrap.dedent(
                f"""
                daemon off;
                master_process off;
                worker_processes 1;
                pid {path}.pid;
                error_log {path}.err warn;
                events {{ worker_connections 4096; }}
                http {{
                    access_log off;
                    sendfile on;
                    tcp_nopush on;
                    keepalive_requests 1000000;
                    client_body_temp_path {work};
                    proxy_temp_path {work};
                    fastcgi_temp_path {work};
                    uwsgi_temp_path {work};
                    scgi_temp_path {work};
                """
            )
            + textwrap.indent(textwrap.dedent(server_block), "    ")
            + "}\n"
        )
    return path


def nginx_cmd(work: str, server_block: str) -> list[str]:
    return [NGINX, "-c", nginx_conf(work, server_block), "-p", work]


class Running:
    """A server process pinned to ``cpu``, in its own session; stopped on exit."""

    def __init__(self, cmd: list[str], cpu: int, log: str, cwd: str = HERE, env=None):
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), *cmd],
            cwd=cwd,
            env=dict(os.environ, **(env or {})),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def status_of(port: int, path: str) -> int:
    """The status of one GET of ``path`` (0 if it fails): a benchmark of
    404s (a missing file) would look fast."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def measure(compare, cmd, port, path, args, work, name, env=None) -> dict:
    with Running(cmd, 0, os.path.join(work, f"{name}.log"), env=env) as srv:
        if not compare.wait_ready(port, srv.proc):
            return {"server": name, "rps": 0.0, "error": "did not start"}
        status = status_of(port, path)
        if status != 200:
            return {"server": name, "rps": 0.0, "error": f"GET {path} answered {status}"}
        compare.run_wrk(port, path, None, args.conns, 1)  # warm-up
        res = compare.run_wrk(port, path, None, args.conns, args.duration)
        res["rss_mib"] = round(compare.tree_rss_kib(srv.proc.pid) / 1024, 1)
    res["server"] = name
    print(f"| {name} | {res['rps']:.0f} | errors {res['errors']} |", file=sys.stderr, flush=True)
    return res


def median(values: list[float]) -> float:
    """The median (the lower one of an even count: a real round's value)."""
    ranked = sorted(values)
    return ranked[(len(ranked) - 1) // 2]


def median_row(rows: list[dict]) -> dict:
    """One entry's round with the median rate (or its first failure)."""
    failed = [r for r in rows if r.get("error")]
    if failed:
        return failed[0]
    rates = [r["rps"] for r in rows]
    return next(r for r in rows if r["rps"] == median(rates))


def measure_rounds(compare, entries, args, work) -> list[dict]:
    """Measures every entry ``(name, make_cmd(port), path, env)`` in
    ``args.rounds`` interleaved rounds (A B C, A B C, ...) and returns one row
    per entry: the round with the median rate, with every round's rate in
    ``rounds``. Interleaving spreads slow drifts of the machine over all
    servers alike; the median keeps one run's mode from deciding a ratio
    (a 1 MiB file over loopback is bimodal run to run, see bench/README.md).
    """
    runs: dict[str, list[dict]] = {name: [] for name, *_ in entries}
    for _ in range(max(1, args.rounds)):
        for name, make_cmd, path, env in entries:
            port = compare.free_port()
            runs[name].append(measure(compare, make_cmd(port), port, path, args, work, name, env))
    rows = []
    for results in runs.values():
        row = median_row(results)
        if not row.get("error"):
            row = dict(row, rounds=[r["rps"] for r in results])
        rows.append(row)
    return rows


def qiao(app: str, port: int, *options: str) -> list[str]:
    return [f"{BIN}/qiao", app, "--bind", f"127.0.0.1:{port}", "--workers", "1", *options]


def static_scenario(compare, args, work) -> list[dict]:
    folder = os.path.dirname(os.path.abspath(args.compare))
    # The file is made by the shared apps module on its first import.
    load_compare(os.path.join(folder, "apps.py"))
    path = f"{STATIC_PREFIX}/_1mib.bin"
    env = {"PYTHONPATH": HERE, "BENCH_STATIC_DIR": folder}

    def nginx_static(port: int) -> list[str]:
        block = f"""
            server {{
                listen 127.0.0.1:{port};
                location {STATIC_PREFIX}/ {{ alias {folder}/; }}
            }}
        """
        return nginx_cmd(work, block)

    entries = [
        (
            "qiao --static",
            lambda port: qiao("native_apps:hello", port, f"--static={STATIC_PREFIX}={folder}"),
            path,
            env,
        ),
        ("qiao Static (portable)", lambda port: qiao("native_apps:static_app", port), path, env),
        ("nginx", nginx_static, path, env),
    ]
    return measure_rounds(compare, entries, args, work)


def proxy_scenario(compare, args, work) -> list[dict]:
    up_port = compare.free_port()
    upstream = f"""
        server {{
            listen 127.0.0.1:{up_port} backlog=4096;
            location / {{ return 200 "{HELLO}"; }}
        }}
    """
    up_log = os.path.join(work, "upstream.log")
    with Running(nginx_cmd(work, upstream), 1, up_log) as up:
        if not compare.wait_ready(up_port, up.proc):
            return [{"server": "upstream", "rps": 0.0, "error": "upstream did not start"}]
        env = {"PYTHONPATH": HERE}

        def nginx_proxy(port: int) -> list[str]:
            block = f"""
                upstream hello {{ server 127.0.0.1:{up_port}; keepalive 64; }}
                server {{
                    listen 127.0.0.1:{port};
                    location / {{
                        proxy_pass http://hello;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                    }}
                }}
            """
            return nginx_cmd(work, block)

        entries = [
            (
                "qiao --proxy",
                lambda port: qiao(
                    "native_apps:hello", port, f"--proxy=/=http://127.0.0.1:{up_port}"
                ),
                "/",
                env,
            ),
            ("nginx", nginx_proxy, "/", None),
        ]
        return measure_rounds(compare, entries, args, work)


SCENARIOS = {"static": static_scenario, "proxy": proxy_scenario}
#: (scenario, numerator, denominator, target ratio) checked in the report.
TARGETS = [
    ("static", "qiao --static", "nginx", 0.90),
    ("static", "qiao Static (portable)", "qiao --static", 0.80),
    ("proxy", "qiao --proxy", "nginx", 1.00),
]


def run(args, names: list[str]) -> tuple[str, bool]:
    """Runs the scenarios; returns the Markdown section and whether all ran."""
    compare = load_compare(args.compare)
    work = tempfile.mkdtemp(prefix="qiao-native-bench-")
    results = {}
    for name in names:
        print(f"native scenario {name} (logs in {work})", file=sys.stderr, flush=True)
        results[name] = SCENARIOS[name](compare, args, work)
        time.sleep(0.5)
    lines = ["", "Native routes (requests per second, higher is better):", ""]
    lines += [
        "| scenario | server | req/s (median) | rounds | p99 ms | RSS MiB |",
        "|---|---|---:|---|---:|---:|",
    ]
    ok = True
    for name, rows in results.items():
        for r in rows:
            if r.get("error"):
                ok = False
                lines.append(f"| {name} | {r['server']} | failed ({r['error']}) | - | - | - |")
                continue
            p99 = "-" if r.get("p99_ms") is None else f"{r['p99_ms']:.2f}"
            rounds = ", ".join(f"{x:,.0f}" for x in r.get("rounds", [r["rps"]]))
            lines.append(
                f"| {name} | {r['server']} | {r['rps']:,.0f} | {rounds} | {p99} "
                f"| {r.get('rss_mib', '-')} |"
            )
    lines += ["", "| target | ratio | goal | met |", "|---|---:|---:|---|"]
    for scenario, num, den, goal in TARGETS:
        rows = {r["server"]: r for r in results.get(scenario, [])}
        if num not in rows or den not in rows or not rows[den].get("rps"):
            continue
        ratio = rows[num]["rps"] / rows[den]["rps"]
        met = "yes" if ratio >= goal else "no"
        lines.append(f"| {num} / {den} | {ratio:.2f} | ≥ {goal:.2f} | {met} |")
    return "\n".join(lines) + "\n", ok
