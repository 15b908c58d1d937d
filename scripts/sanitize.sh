#!/usr/bin/env bash
# Builds the unit tests with AddressSanitizer + UBSan (build-asan/) and runs the tests of the code
# that writes and reads packed bytes: KV store, pages, codecs, attention, the damage probe, the
# weight matmuls/repacking, the huge-page buffer and the bandwidth probe. A write outside a page or
# a misread code fails here even when the values happen to look right. Not part of scripts/test.sh:
# a fresh instrumented build takes over an hour on 2 cores, most of it ops/attention_kernels.cc
# (every SIMD target, the VNNI kernels inlined); after a change that leaves that file and the
# kernel headers alone (e.g. to the attention driver, ops/attention.cc) it takes minutes. Run it
# after touching src/kv, src/ops, src/engine or src/io.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVBITS_SANITIZE=ON -DKVBITS_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$(nproc)" --target kvbits_unit_tests
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions="$here/scripts/ubsan.supp"
./build-asan/tests/kvbits_unit_tests \
  --gtest_filter='Kv*:PageArena*:Attention*:ChunkLanes*:DecodeSplit*:DamageProbe*:SessionFeatures*:Hadamard*:Matmul*:Planar*:Quant*:Controller*:HugePageBuffer*:HugePageBytes*:FlushDenormalsScope*:MemoryBandwidth*'
