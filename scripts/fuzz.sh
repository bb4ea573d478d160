#!/usr/bin/env bash
# Fuzzes every parser that reads client or operator input (the targets in fuzz/) for
# SECONDS_PER_TARGET each, one target at a time, after replaying the inputs that once crashed
# (fuzz/regressions/<target>/). Fails on any crash. Installs nightly and cargo-fuzz if missing.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 20 seconds, every target)
#
# FUZZ_SANITIZER=none builds without AddressSanitizer (about twice the executions per second).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-20}
shift || true

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz
fi

sanitizer=${FUZZ_SANITIZER:-address}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "== building fuzz targets (sanitizer: $sanitizer)"
for target in "${targets[@]}"; do
  cargo +nightly fuzz build --sanitizer "$sanitizer" "$target"
done
bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release

# Longest input per target: a little over what the server accepts, so the limits are exercised.
max_len() {
  case $1 in
    room_signal) echo 20000 ;;
    ws_frame) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

failed=()
logs=$(mktemp -d)
for target in "${targets[@]}"; do
  bin=$bin_dir/$target
  [ -x "$bin" ] || { echo "$target: not built"; failed+=("$target"); continue; }
  if compgen -G "fuzz/regressions/$target/*" >/dev/null; then
    if ! "$bin" fuzz/regressions/"$target"/* >"$logs/$target.replay" 2>&1; then
      echo "$target: a kept crash input crashes again:"
      tail -n 30 "$logs/$target.replay"
      failed+=("$target")
      continue
    fi
    echo "$target: $(ls fuzz/regressions/"$target" | wc -l) kept crash inputs replayed"
  fi
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  status=0
  nice -n 10 "$bin" "fuzz/corpus/$target" \
    -max_total_time="$secs" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" \
    >"$logs/$target.log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$target.log")
  echo "$target: ${execs:-?} executions in ${secs} s (${rate:-?}/s), exit $status"
  if [ "$status" -ne 0 ]; then
    grep -E "panicked|ERROR: libFuzzer|SUMMARY|Test unit written" "$logs/$target.log" | head -n 10
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "FUZZING FAILED: ${failed[*]} (inputs in fuzz/artifacts/, logs in $logs)"
  exit 1
fi
echo "fuzzing: no crashes"
