#!/usr/bin/env bash
# Runs the parser fuzz target for a bounded time (default 30 s; pass seconds
# as $1). Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz
# pass its -Z flags, and there is no address sanitizer (the crate forbids
# unsafe code, so the target checks panics and the round trip, not memory).
# Installs cargo-fuzz when it is missing. New inputs go to fuzz/corpus/parse
# (ignored by git); fuzz/seeds/parse holds the hand-written seeds; a crash
# is saved under fuzz/artifacts/parse and fails this script.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
mkdir -p corpus/parse
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
exec cargo fuzz run --sanitizer none parse corpus/parse seeds/parse -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10
