#pragma once
// Time the hypervisor took from this virtual machine's CPUs ("steal"), from Linux's /proc/stat,
// so that a benchmark can say how much of its run the host gave to someone else. On the shared
// KVM hosts we measure on, a vCPU was stolen for up to 40 % of a benchmark's wall time, and a
// kernel then "took" twice as long (docs/benchmarks.md, session 44).
#include <cstdint>
#include <optional>
#include <string_view>

namespace kvbits {

// Cumulative CPU time of all CPUs together, in the kernel's clock ticks (USER_HZ, 1/100 s).
struct CpuTimes {
  uint64_t busy = 0;   // user + nice + system + irq + softirq
  uint64_t idle = 0;   // idle + iowait
  uint64_t steal = 0;  // runnable, but the hypervisor ran something else on the physical CPU
};

// Parses the aggregate "cpu " line of a /proc/stat text. nullopt when the line is missing or
// malformed (fewer than the 8 fields that carry steal: kernels before 2.6.11).
std::optional<CpuTimes> parse_proc_stat(std::string_view text);

// The current times from /proc/stat; nullopt where it cannot be read (not Linux, no procfs).
std::optional<CpuTimes> read_cpu_times();

// Share of the CPUs' time stolen between two readings: steal / (busy + idle + steal), in [0, 1];
// 0 when no tick passed. With both CPUs of a 2-vCPU machine busy, 0.25 means that a quarter of
// the time the benchmark could have run on them went to another tenant.
double steal_fraction(const CpuTimes& before, const CpuTimes& after);

}  // namespace kvbits
