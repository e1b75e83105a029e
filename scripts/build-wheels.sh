#!/usr/bin/env bash
# Builds Qiao's release artifacts into target/dist (or $OUT):
#
#     scripts/build-wheels.sh          # a wheel for each interpreter, and the sdist
#     scripts/build-wheels.sh --zig    # manylinux2014 wheels (glibc 2.17), linked
#                                      # with zig (the `ziglang` package from PyPI)
#
# One wheel per CPython version, not one abi3 wheel: the stable ABI cost
# more than 2 % of throughput (measured in bench/RESULTS-abi3.md), though
# the code builds for it (`--features pyo3/abi3-py310`). The sdist builds
# with the Rust of Cargo.toml's `rust-version` or later.
# `auditwheel show` (when installed) says which manylinux tag the wheel
# meets. .github/workflows/release.yml builds the same for every platform
# on a hosted CI.
#
# Environment: PYTHON (default python3) runs maturin; INTERPRETERS (default:
# $PYTHON) lists the interpreters to build for; OUT the directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PYTHON:-python3}
OUT=${OUT:-target/dist}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

"$PY" -m maturin --version >/dev/null 2>&1 || "$PY" -m pip install -q "maturin>=1.5,<2"
args=(--release --out "$OUT")
read -r -a interpreters <<<"${INTERPRETERS:-$PY}"
for i in "${interpreters[@]}"; do
    args+=(--interpreter "$i")
done
if [ "${1:-}" = "--zig" ]; then
    "$PY" -m pip install -q ziglang
    args+=(--zig --compatibility manylinux2014)
fi
rm -rf "$OUT"
mkdir -p "$OUT"
"$PY" -m maturin build "${args[@]}"
"$PY" -m maturin sdist --out "$OUT"
if "$PY" -m auditwheel --version >/dev/null 2>&1; then
    for wheel in "$OUT"/*.whl; do
        "$PY" -m auditwheel show "$wheel"
    done
fi
ls -l "$OUT"
