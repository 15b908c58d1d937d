# Counts the instructions a kernel executes by single-stepping it in gdb: a histogram of
# mnemonics, scalar and vector, by function and by 256-byte region of the hottest function.
# For hosts without PMU counters (no `perf stat -e instructions`), where it tells what a kernel's
# time is made of (docs/benchmarks.md, "The VNNI tile against the host's pipes").
#
#   KVBITS_GDB_ARGS="--benchmark_filter=BM_AttentionDecode/bits:2/tokens:8192/threads:1 --benchmark_min_time=0.001" \
#   KVBITS_GDB_BREAK="kvbits::N_AVX3_DL::AttendPage" KVBITS_GDB_STEPS=120000 \
#     gdb -q -batch -x scripts/gdb_count_instructions.py build/bench/kvbits_kernel_bench
#
# It stops at the 21st call of KVBITS_GDB_BREAK (past the set-up), then steps KVBITS_GDB_STEPS
# instructions wherever they go (callees and following calls included): divide the counts by the
# number of tiles those steps covered (e.g. the calls counted by their prologue's `push`es).
# ~1,000 steps per second.
import collections
import os
import re

import gdb

args = os.environ.get("KVBITS_GDB_ARGS", "")
brk = os.environ.get("KVBITS_GDB_BREAK", "kvbits::N_AVX3_DL::AttendPage")
steps = int(os.environ.get("KVBITS_GDB_STEPS", "120000"))
# KVBITS_GDB_TOP=N also lists the N most executed scalar instructions (address, count, text), to
# find them in `objdump -d` of the binary.
top = int(os.environ.get("KVBITS_GDB_TOP", "0"))

gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("break " + brk)
gdb.execute("run " + args + " > /dev/null")
gdb.execute("continue 20")
by_function = collections.Counter()
scalar_by_function = collections.Counter()
mnemonics = collections.Counter()
regions = collections.Counter()
region_mnemonics = collections.defaultdict(collections.Counter)
scalar_at = collections.Counter()
text_at = {}
for _ in range(steps):
    line = gdb.execute("x/i $pc", to_string=True)
    # An encoding prefix ("{vex} vpdpbusd", "{evex} ...") is not the mnemonic: skip it.
    m = re.search(r"<([^>+]*)(\+(\d+))?>:\s+(?:\{\w+\}\s+)?(\S+)", line)
    if m:
        function, offset, mnemonic = m.group(1), int(m.group(3) or 0), m.group(4)
        by_function[function] += 1
        mnemonics[mnemonic] += 1
        if not mnemonic.startswith(("v", "prefetch", "k")):  # not AVX, prefetch or mask-register
            scalar_by_function[function] += 1
            region = (function, offset // 256 * 256)
            regions[region] += 1
            region_mnemonics[region][mnemonic] += 1
            if top:
                scalar_at[(function, offset)] += 1
                text_at[(function, offset)] = line.split(":", 1)[-1].strip()
    gdb.execute("stepi", to_string=True)
print("steps", steps)
for function, n in by_function.most_common(12):
    print("function %7d instructions, %7d scalar: %s" % (n, scalar_by_function[function], function[:100]))
for mnemonic, n in mnemonics.most_common(40):
    print("mnemonic %7d %s" % (n, mnemonic))
for region, n in regions.most_common(20):
    print("scalar region +%-6d %6d %s" % (region[1], n, dict(region_mnemonics[region].most_common(6))))
for (function, offset), n in scalar_at.most_common(top):
    print("scalar at +%-6d %6d %s" % (offset, n, text_at[(function, offset)]))
gdb.execute("kill")
