#!/usr/bin/env bash
# run_fuzzers.sh BUILD_DIR SECONDS: runs every libFuzzer target of a
# -DILA_FUZZ=ON build for SECONDS each (`make fuzz`), from a copy of its
# checked-in corpus (hex seeds decoded). Stops at the first crash; the
# crashing input is left in BUILD_DIR/fuzz/ (libFuzzer's crash-* file).
# New interesting inputs stay in BUILD_DIR/fuzz/corpus/<name>; fold them
# into the checked-in corpus with `<name>_fuzz -merge=1 tests/fuzz/corpus/<name>
# BUILD_DIR/fuzz/corpus/<name>` when they are worth keeping.
set -euo pipefail
build=$1
seconds=$2
[[ -f $build/fuzz_corpora.txt ]] || {
  echo "run_fuzzers: $build/fuzz_corpora.txt missing (configure with -DILA_FUZZ=ON)" >&2
  exit 2
}
cd "$build/fuzz"
while read -r name seeds; do
  corpus=corpus/$name
  mkdir -p "$corpus"
  for dir in $seeds; do
    for f in "$dir"/*; do
      case $f in
        *.md) ;;
        *.hex) perl -ne 's/[^0-9a-fA-F]//g; print pack("H*", $_)' "$f" \
                 >"$corpus/$(basename "$f" .hex)" ;;
        *) cp "$f" "$corpus/" ;;
      esac
    done
  done
  echo "run_fuzzers: ${name}_fuzz for ${seconds} s"
  # -rss_limit_mb: a target must not need more than this per input.
  ./"${name}_fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -print_final_stats=1 "$corpus" 2>"$name.log" || {
    tail -40 "$name.log" >&2
    echo "run_fuzzers: ${name}_fuzz FAILED (log: $build/fuzz/$name.log)" >&2
    exit 1
  }
  grep -E "stat::number_of_executed_units|stat::new_units_added" "$name.log" |
    sed "s/^/  $name: /"
done <../fuzz_corpora.txt
echo "run_fuzzers: every target ran ${seconds} s without a crash"
