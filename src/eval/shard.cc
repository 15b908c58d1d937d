#include "eval/shard.h"

#include <algorithm>
#include <charconv>

#include "util/error.h"

namespace kvbits::eval {

namespace {
bool parse_int(std::string_view s, int64_t& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}
}  // namespace

ShardSpec parse_shard(std::string_view text) {
  const std::string quoted = "--shard '" + std::string(text) + "'";
  const size_t slash = text.find('/');
  ShardSpec s;
  if (slash == std::string_view::npos || !parse_int(text.substr(0, slash), s.index) ||
      !parse_int(text.substr(slash + 1), s.count)) {
    throw Error(quoted + ": expected i/n, e.g. 1/4");
  }
  if (s.count < 1) throw Error(quoted + ": the number of shards must be at least 1");
  if (s.index < 1 || s.index > s.count) {
    throw Error(quoted + ": shard index out of range (1-based: 1.." + std::to_string(s.count) + ")");
  }
  return s;
}

std::string to_string(const ShardSpec& shard) {
  return std::to_string(shard.index) + "/" + std::to_string(shard.count);
}

int64_t limited_count(int64_t n_items, int64_t limit) {
  if (limit < 0) throw Error("--limit " + std::to_string(limit) + ": must be >= 0 (0: all items)");
  return limit == 0 ? n_items : std::min(n_items, limit);
}

std::vector<int64_t> select_items(int64_t n_items, int64_t limit, const ShardSpec& shard) {
  if (shard.count < 1 || shard.index < 1 || shard.index > shard.count) {
    throw Error("shard " + to_string(shard) + ": index out of range");
  }
  const int64_t n = limited_count(n_items, limit);
  std::vector<int64_t> out;
  for (int64_t i = shard.index - 1; i < n; i += shard.count) out.push_back(i);
  if (out.empty()) {
    throw Error("shard " + to_string(shard) + " is empty: only " + std::to_string(n) + " item(s) to share");
  }
  return out;
}

}  // namespace kvbits::eval
