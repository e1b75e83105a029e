#!/usr/bin/env bash
# Qiao on every CPython that `requires-python` names, installed the way a
# user installs it: from the release wheel, into a fresh virtualenv.
#
#     scripts/test-pythons.sh                 # build the wheels, test each pyenv CPython
#     scripts/test-pythons.sh DIR             # test the wheels already in DIR
#     PYTHONS="3.9 3.13" scripts/test-pythons.sh
#
# For each CPython 3.9 or later that `pyenv versions` lists (or PYTHONS
# names), the newest patch release: its release wheel built
# (scripts/build-wheels.sh), a virtualenv in target/pythons/3.X, the
# wheel and the test dependencies installed there, and an end-to-end
# subset run against it: Flask, Django, Falcon and Bottle apps, streaming
# and file_wrapper, slow clients (kept bytes), config files, signals.
# The suite finds the installed Qiao: servers start as `python -m qiao`
# with the venv's interpreter, and nothing puts python/ on the path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
export PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}

#: What each interpreter runs: whole files, and a slice of the process tests.
SUBSET=(
    tests/e2e/test_frameworks.py
    tests/e2e/test_wsgi.py
    tests/e2e/test_slow_clients.py
    tests/e2e/test_config.py
    "tests/e2e/test_process_supervisor.py::test_sighup_reloads_code_with_zero_failures"
    "tests/e2e/test_process_supervisor.py::test_sigterm_finishes_request_in_flight"
    "tests/e2e/test_process_supervisor.py::test_ttin_adds_and_ttou_removes_a_worker"
    "tests/e2e/test_process_workers.py::test_dying_worker_replaced"
)
DEPS=(pytest pytest-timeout requests flask django falcon bottle h2)

# The newest installed patch release of each minor version.
pythons=()
if [ -n "${PYTHONS:-}" ]; then
    read -r -a minors <<<"$PYTHONS"
else
    mapfile -t minors < <(ls "$PYENV_ROOT/versions" | grep -E '^3\.[0-9]+\.[0-9]+$' \
        | cut -d. -f1,2 | sort -u -V)
fi
for minor in "${minors[@]}"; do
    [ "$(printf '%s\n3.9\n' "$minor" | sort -V | head -n 1)" = 3.9 ] || continue
    patch=$(ls "$PYENV_ROOT/versions" | grep -E "^${minor//./\\.}\.[0-9]+$" | sort -V | tail -n 1)
    [ -n "$patch" ] && pythons+=("$PYENV_ROOT/versions/$patch/bin/python")
done
[ "${#pythons[@]}" -gt 0 ] || { echo "no CPython 3.9+ found under $PYENV_ROOT" >&2; exit 1; }

dist=${1:-}
if [ -z "$dist" ]; then
    dist="$ROOT/target/dist"
    OUT="$dist" INTERPRETERS="${pythons[*]}" scripts/build-wheels.sh
fi

failed=()
for py in "${pythons[@]}"; do
    version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    venv="$ROOT/target/pythons/$version"
    printf '\n==== CPython %s (%s) ====\n' "$version" "$py"
    t=$SECONDS
    tag="cp${version//./}"
    wheel=$(ls "$dist"/qiao-*-"$tag"-"$tag"-*.whl 2>/dev/null | head -n 1)
    [ -n "$wheel" ] || { echo "no $tag wheel in $dist" >&2; failed+=("$version"); continue; }
    echo "wheel: $wheel"
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$wheel"
    "$venv/bin/python" -m pip install -q "$wheel" "${DEPS[@]}"
    # Run from the root, where no `qiao` directory shadows the installed one.
    where=$("$venv/bin/python" -c 'import os, qiao; print(os.path.dirname(qiao.__file__))')
    case "$where" in "$venv"/*) ;; *) echo "qiao imported from $where, not the venv" >&2; exit 1 ;; esac
    if "$venv/bin/python" -m pytest -q -p no:cacheprovider "${SUBSET[@]}"; then
        echo "CPython $version: passed in $((SECONDS - t))s"
    else
        failed+=("$version")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed on CPython ${failed[*]}" >&2
    exit 1
fi
printf '\n==== every CPython passed: %s ====\n' "${pythons[*]}"
