#!/usr/bin/env bash
# VEX-encoded VNNI instructions (AVX-VNNI: "{vex} vpdpbusd" etc.) may stand only in the AVX2
# target's code (namespace kvbits::N_AVX2), which uses them behind a run-time check of the CPU
# (backend/simd_targets.h vpdpbusd_enabled). Highway 1.0.3 compiles its AVX3_DL target with
# "avxvnni" enabled, so a 256-bit VNNI intrinsic there silently becomes the VEX form, which AVX-512
# VNNI CPUs without AVX-VNNI (AMD Zen 4, Intel Ice Lake) do not implement: the engine would die with
# SIGILL on exactly the machines AVX3_DL is chosen for. The AVX3 kernels emit the EVEX form
# explicitly (src/ops/matmul.cc, src/ops/vpdpbusd256-inl.h); this test keeps it that way. (That the
# AVX2 code asks the CPU first is for the code and its tests to show, not this one.)
#
# usage: bash tests/cli/no_vex_vnni.sh KVBITS_BINARY SOURCE_DIR
set -u
KVBITS=${1:?usage: no_vex_vnni.sh KVBITS_BINARY SOURCE_DIR}
if ! command -v objdump >/dev/null; then
  echo "objdump not found (binutils): cannot inspect $KVBITS" >&2
  exit 1
fi
# Function headers ("0000... <kvbits::N_AVX2::...>:") name the code each instruction is in.
report=$(objdump -d --no-show-raw-insn -C "$KVBITS" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0; next }
  /\{vex\} *vpdp(bu|ws)sds?/ { if (fn ~ /N_AVX2::/) avx2++; else { bad++; if (bad <= 3) print "  " fn ": " $0 } }
  /vpdpbusd/ && !/\{vex\}/ { evex++ }
  END { printf "%d %d %d\n", bad + 0, avx2 + 0, evex + 0 }')
counts=$(echo "$report" | tail -n 1)
read -r bad avx2 evex <<<"$counts"
if [[ "$bad" != 0 ]]; then
  echo "FAIL: $bad VEX-encoded VNNI instructions outside the AVX2 target's code in $KVBITS, e.g.:" >&2
  echo "$report" | sed '$d' >&2
  exit 1
fi
echo "ok: VEX-encoded VNNI only in the AVX2 target's code ($avx2 there; $evex EVEX vpdpbusd)"
