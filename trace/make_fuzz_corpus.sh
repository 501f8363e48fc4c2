#!/bin/sh
# make_fuzz_corpus.sh HEX_DIR OUT_DIR: the captured messages as raw files,
# libFuzzer's seed corpus for packet_fuzz.
set -eu
mkdir -p "$2"
for f in "$1"/*.hex; do
  perl -ne 'chomp; print pack("H*", $_)' "$f" >"$2/$(basename "$f" .hex)"
done
