#!/usr/bin/env bash
# Runs every fuzz target (classifier/fuzz, offload/fuzz, tools/fuzz) for SECONDS each
# (default 20), starting from the checked-in corpus. New inputs go to a
# temporary folder; a crash leaves its input under CRATE/fuzz/artifacts/ and
# fails the run.
# Needs cargo-fuzz (installed here if missing); stable Rust works with
# --sanitizer none.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for ct in classifier:extract_frame classifier:odp_text classifier:rule_text offload:netlink_flow tools:config_toml tools:ctl_request tools:openflow_message tools:pcap_input; do
  c=${ct%%:*} t=${ct#*:}
  mkdir -p "$work/$t"
  echo "== fuzz $c/$t for ${secs}s"
  if ! (cd "$c" && cargo fuzz run --sanitizer none "$t" "$work/$t" "fuzz/corpus/$t" -- -max_total_time="$secs") >"$work/$t.log" 2>&1; then
    grep -E 'panicked|SUMMARY|crash-|error' "$work/$t.log" || tail -20 "$work/$t.log"
    echo "fuzz target $c/$t failed"
    exit 1
  fi
  grep -E '^Done' "$work/$t.log"
done
