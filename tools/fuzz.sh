#!/usr/bin/env bash
# Runs every fuzz target of classifier/fuzz for SECONDS each (default 20),
# starting from the checked-in corpus. New inputs go to a temporary folder;
# a crash leaves its input under classifier/fuzz/artifacts/ and fails the run.
# Needs cargo-fuzz (installed here if missing); stable Rust works with
# --sanitizer none.
set -euo pipefail
cd "$(dirname "$0")/../classifier"
secs=${1:-20}
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in extract_frame odp_text rule_text; do
  mkdir -p "$work/$t"
  echo "== fuzz $t for ${secs}s"
  if ! cargo fuzz run --sanitizer none "$t" "$work/$t" "fuzz/corpus/$t" -- -max_total_time="$secs" >"$work/$t.log" 2>&1; then
    grep -E 'panicked|SUMMARY|crash-|error' "$work/$t.log" || tail -20 "$work/$t.log"
    echo "fuzz target $t failed"
    exit 1
  fi
  grep -E '^Done' "$work/$t.log"
done
