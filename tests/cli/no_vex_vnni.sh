#!/usr/bin/env bash
# The binary must not contain VEX-encoded VNNI instructions (AVX-VNNI: "{vex} vpdpbusd" etc.).
# Highway 1.0.3 compiles its AVX3_DL target with "avxvnni" enabled, so a 256-bit VNNI intrinsic
# silently becomes the VEX form, which AVX-512 VNNI CPUs without AVX-VNNI (AMD Zen 4, Intel Ice
# Lake) do not implement: the engine dies with SIGILL on exactly the machines AVX3_DL is chosen for.
# Our kernels emit the EVEX form explicitly (src/ops/matmul.cc); this test keeps it that way.
#
# usage: bash tests/cli/no_vex_vnni.sh KVBITS_BINARY SOURCE_DIR
set -u
KVBITS=${1:?usage: no_vex_vnni.sh KVBITS_BINARY SOURCE_DIR}
if ! command -v objdump >/dev/null; then
  echo "objdump not found (binutils): cannot inspect $KVBITS" >&2
  exit 1
fi
hits=$(objdump -d --no-show-raw-insn "$KVBITS" | grep -E '\{vex\} *vpdp(bu|ws)sds?' || true)
if [[ -n "$hits" ]]; then
  echo "FAIL: $(echo "$hits" | wc -l) VEX-encoded VNNI instructions in $KVBITS, e.g.:" >&2
  echo "$hits" | head -n 3 >&2
  exit 1
fi
total=$(objdump -d --no-show-raw-insn "$KVBITS" | grep -cE 'vpdpbusd' || true)
echo "ok: no VEX-encoded VNNI instructions ($total EVEX vpdpbusd)"
