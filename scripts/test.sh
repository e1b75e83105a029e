#!/usr/bin/env bash
# Qiao's test command. Run it from anywhere, on a fresh machine or an old one:
#
#     scripts/test.sh                   # install what is missing, build, run every check
#     SKIP_INSTALL=1 scripts/test.sh    # skip all installs (packages and Qiao itself)
#
# Steps, stopping at the first failure:
#   1. apt packages (curl, a C toolchain) if missing; Rust (rustup) if missing;
#      pip packages the tests need
#   2. build Qiao and install it into this Python (`pip install .`)
#   3. cargo fmt --check
#   4. cargo clippy --all-targets -- -D warnings (the workspace's default
#      members: every crate), scripts/module-cycles.py, and cargo doc
#      (developer docs, private items included: a broken link fails)
#   5. ruff check and ruff format --check on the whole tree
#   6. mypy.stubtest qiao._qiao: the stub python/qiao/_qiao.pyi matches the
#      built engine module (names, parameters, classes)
#   6b. mypy: the public Python API (qiao.serve, qiao.middleware.*) is
#      fully annotated and type-checks
#   7. cargo test
#   8. pytest tests/e2e
#   9. scripts/test-pythons.sh: a release wheel per CPython 3.9+ that pyenv
#      has, each installed in a fresh venv and run against an e2e subset
#      (skipped with SKIP_PYTHONS=1 or SKIP_INSTALL=1, or without pyenv CPythons)
#
# Environment: PYTHON (default python3) picks the interpreter. If it is a
# system Python that refuses pip installs (PEP 668, "externally managed"), a
# virtual environment is made in target/test-venv and used instead.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
START=$SECONDS

section() { printf '\n==== %s ====\n' "$*"; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || printf "\nscripts/test.sh: FAILED (exit %s) after %ss\n" "$rc" "$((SECONDS - START))" >&2' EXIT

SKIP_INSTALL=${SKIP_INSTALL:-0}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

SUDO=
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo -n"; fi

apt_install() {
    [ "$#" -gt 0 ] || return 0
    command -v apt-get >/dev/null || die "missing $*, and no apt-get to install them"
    echo "apt-get install $*"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
    $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >/dev/null
}

# ---------------------------------------------------------------- 1. installs
PY=${PYTHON:-python3}
VENV="$ROOT/target/test-venv"
if [ "$SKIP_INSTALL" != 1 ]; then
    section "install: system packages"
    missing=()
    command -v curl >/dev/null || missing+=(curl)
    command -v cc >/dev/null || missing+=(build-essential)
    # nginx: the uwsgi-protocol tests put a real nginx in front of Qiao.
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    # h2load: the HTTP/2 tests load Qiao with it (skipped without it).
    command -v h2load >/dev/null || missing+=(nghttp2-client)
    command -v "$PY" >/dev/null || missing+=(python3 python3-dev python3-venv)
    apt_install "${missing[@]+"${missing[@]}"}"
    echo "ok"
fi

command -v "$PY" >/dev/null || die "$PY not found"
# A system Python marked EXTERNALLY-MANAGED refuses `pip install`: use a venv.
if [ -x "$VENV/bin/python" ]; then
    PY="$VENV/bin/python"
elif "$PY" -c 'import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(marker) else 1)'; then
    [ "$SKIP_INSTALL" != 1 ] || die "$PY is externally managed and SKIP_INSTALL=1: no venv to use"
    # venv for the venv, -dev for the libpython that `cargo test` links.
    dpkg -s python3-venv python3-dev >/dev/null 2>&1 || apt_install python3-venv python3-dev
    echo "$PY is externally managed (PEP 668): creating $VENV"
    "$PY" -m venv "$VENV"
    PY="$VENV/bin/python"
fi
if [ "$PY" = "$VENV/bin/python" ]; then
    export PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV" PYO3_PYTHON="$PY"
fi
# Where the interpreter installs scripts (`qiao`, `pytest`, `ruff`), so they are found.
PYBIN=$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
export PATH="$PYBIN:$PATH"
# cargo test embeds Python: let the test binaries find a shared libpython.
PYLIBDIR=$("$PY" -c 'import sysconfig as s; print(s.get_config_var("LIBDIR") if s.get_config_var("Py_ENABLE_SHARED") else "")')
[ -z "$PYLIBDIR" ] || export LD_LIBRARY_PATH="$PYLIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if [ "$SKIP_INSTALL" != 1 ]; then
    section "install: Rust toolchain"
    if ! command -v cargo >/dev/null; then
        echo "cargo not found: installing Rust with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
            | sh -s -- -y --profile minimal --component clippy,rustfmt
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if command -v rustup >/dev/null; then
        comps=$(rustup component list --installed)
        for c in clippy rustfmt; do
            grep -q "^$c" <<<"$comps" || rustup component add "$c"
        done
    fi
    cargo --version

    section "install: Python packages"
    "$PY" -m pip --version >/dev/null 2>&1 || "$PY" -m ensurepip --upgrade
    "$PY" -m pip install -q maturin pytest pytest-timeout requests flask django falcon bottle ruff watchfiles brotli zstandard lxml prometheus_client \
        cryptography "httpx[http2]" mypy \
        gunicorn gevent setproctitle PasteDeploy
    "$PY" --version

    section "build + install qiao (pip install .)"
    t=$SECONDS
    "$PY" -m pip install -q "$ROOT"
    echo "built and installed in $((SECONDS - t))s"
fi

# ------------------------------------------------------------------ 2. checks
section "cargo fmt --check"
fmt_args=()
[ -t 1 ] || fmt_args=(-- --color=never)
cargo fmt --all --check "${fmt_args[@]+"${fmt_args[@]}"}" || die "cargo fmt --check: run \`cargo fmt --all\`"
echo "ok"

section "cargo clippy --all-targets -- -D warnings (every crate of the workspace)"
cargo clippy --all-targets -- -D warnings

section "no module cycles inside a crate (scripts/module-cycles.py)"
"$PY" scripts/module-cycles.py

section "cargo doc --document-private-items, warnings as errors (links resolve)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --document-private-items

section "ruff check + ruff format --check (the whole tree, Markdown code blocks too)"
"$PY" -m ruff check .
"$PY" -m ruff format --check .

section "mypy.stubtest qiao._qiao"
# The installed module against the stub installed with it (both built from
# this tree by step 2): a keyword, class or name of the engine that the stub
# does not spell exactly fails the run. Run from the root, where no `qiao`
# package shadows the installed one.
"$PY" -m mypy.stubtest qiao._qiao || die "mypy.stubtest: python/qiao/_qiao.pyi does not match qiao._qiao"

section "mypy: the public API (qiao.serve, qiao.middleware) is typed"
# Every function annotated (--disallow-untyped-defs), checked against the
# engine's stub; modules these import are read for types, not checked.
(cd python && "$PY" -m mypy qiao/__init__.py qiao/server.py qiao/listeners.py qiao/middleware \
    --disallow-untyped-defs --ignore-missing-imports --follow-imports=silent) \
    || die "mypy: the public API has a type error or an unannotated function"

section "cargo test --no-fail-fast (every crate of the workspace)"
cargo test --no-fail-fast

section "pytest tests/e2e"
"$PY" -c 'import qiao, os; print("qiao from", os.path.dirname(qiao.__file__))' \
    || die "qiao is not importable from $PY (run without SKIP_INSTALL=1 to install it)"
set +e
"$PY" -m pytest tests/e2e -q -p no:cacheprovider
rc=$?
set -e
case $rc in
    0) ;;
    5) die "pytest collected no tests in tests/e2e (exit 5)" ;;
    *) die "pytest tests/e2e (exit $rc)" ;;
esac

if [ "${SKIP_PYTHONS:-0}" != 1 ] && [ "$SKIP_INSTALL" != 1 ]; then
    section "every supported CPython (scripts/test-pythons.sh)"
    if ls "${PYENV_ROOT:-$HOME/.pyenv}/versions" 2>/dev/null | grep -qE '^3\.[0-9]+\.[0-9]+$'; then
        t=$SECONDS
        scripts/test-pythons.sh || die "scripts/test-pythons.sh"
        echo "every CPython in $((SECONDS - t))s"
    else
        echo "skipped: no pyenv CPython (install some with pyenv to test them)"
    fi
fi

printf '\n==== all checks passed in %ss ====\n' "$((SECONDS - START))"
