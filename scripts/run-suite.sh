#!/usr/bin/env bash
# Runs one Criterion test binary and fails when it fails or when a sanitizer
# reported anything. Criterion runs each test in a child process, and
# LeakSanitizer reports leaks only when that child exits. Criterion has
# counted the test as passed by then, so the output is scanned as well.
set -uo pipefail

binary=$1
shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT

"$binary" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

if grep -qE 'ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:' "$log"; then
    echo "run-suite: sanitizer errors reported while running $binary (see above)" >&2
    exit 1
fi
exit "$status"
