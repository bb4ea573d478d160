#!/usr/bin/env bash
# Fuzzes every parser that reads client or operator input (the targets in fuzz/) for
# SECONDS_PER_TARGET each, one target at a time, after replaying the inputs that once crashed
# (fuzz/regressions/<target>/). Fails on any crash. Installs nightly and cargo-fuzz if missing.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 20 seconds, every target)
#
# FUZZ_SANITIZER=none builds without AddressSanitizer (about twice the executions per second).
# FUZZ_SEED=N makes a run repeatable: libFuzzer's mutations start from that seed and each target
# stops after a fixed number of executions (about SECONDS_PER_TARGET on this machine) instead of
# after a time, so the same commit fuzzes the same inputs every time (what CI does).
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

# Executions per second per target with AddressSanitizer on a 2-core machine (measured), to turn
# SECONDS_PER_TARGET into a fixed run count for a seeded run.
rate_of() {
  case $1 in
    config_toml) echo 1500 ;;
    jwt_claims) echo 4000 ;;
    *) echo 30000 ;;
  esac
}

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
  if [ -n "${FUZZ_SEED:-}" ]; then
    budget=(-seed="$FUZZ_SEED" -runs="$((secs * $(rate_of "$target")))")
  else
    budget=(-max_total_time="$secs")
  fi
  nice -n 10 "$bin" "fuzz/corpus/$target" \
    "${budget[@]}" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" \
    >"$logs/$target.log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$target.log")
  echo "$target: ${execs:-?} executions${FUZZ_SEED:+ from seed $FUZZ_SEED} in about ${secs} s (${rate:-?}/s), exit $status"
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
