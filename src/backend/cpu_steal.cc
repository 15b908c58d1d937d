#include "backend/cpu_steal.h"

#include <fstream>
#include <sstream>
#include <string>

namespace kvbits {

std::optional<CpuTimes> parse_proc_stat(std::string_view text) {
  // The first line: "cpu  user nice system idle iowait irq softirq steal guest guest_nice".
  if (text.substr(0, 4) != "cpu ") return std::nullopt;
  const size_t eol = text.find('\n');
  std::istringstream line{std::string(text.substr(4, eol == std::string_view::npos ? text.size() - 4 : eol - 4))};
  uint64_t f[8];
  for (uint64_t& v : f) {
    if (!(line >> v)) return std::nullopt;
  }
  CpuTimes t;
  t.busy = f[0] + f[1] + f[2] + f[5] + f[6];
  t.idle = f[3] + f[4];
  t.steal = f[7];
  return t;
}

std::optional<CpuTimes> read_cpu_times() {
  std::ifstream in("/proc/stat");
  if (!in) return std::nullopt;
  std::string first;
  if (!std::getline(in, first)) return std::nullopt;
  return parse_proc_stat(first);
}

double steal_fraction(const CpuTimes& before, const CpuTimes& after) {
  // Counters only grow; a reading that went backwards (a different machine's text) counts as 0.
  auto delta = [](uint64_t a, uint64_t b) { return b > a ? b - a : uint64_t{0}; };
  const uint64_t steal = delta(before.steal, after.steal);
  const uint64_t total = delta(before.busy, after.busy) + delta(before.idle, after.idle) + steal;
  return total > 0 ? static_cast<double>(steal) / static_cast<double>(total) : 0.0;
}

}  // namespace kvbits
