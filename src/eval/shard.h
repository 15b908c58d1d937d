#pragma once
// Splitting a task's items over machines: --limit N keeps the first N items, then --shard i/n
// keeps every n-th of those, starting at the i-th. Shard indices are 1-based (as GNU split's
// "-n K/N"): 1/4, 2/4, 3/4, 4/4 together cover every item exactly once.
//
// Striding rather than contiguous blocks gives each shard a similar mix of items (task files
// are often ordered by source or length), so shards take similar time and a partial shard is a
// fair sample. Items keep their global index (their position in the file), so shards merge.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvbits::eval {

struct ShardSpec {
  int64_t index = 1;  // 1-based, in [1, count]
  int64_t count = 1;
  bool operator==(const ShardSpec&) const = default;
};

// Parses "i/n" (1 <= i <= n). Throws Error ("--shard '0/4': ...") otherwise.
ShardSpec parse_shard(std::string_view text);
std::string to_string(const ShardSpec& shard);  // "i/n"

// Number of items after --limit: min(limit, n_items), or n_items if limit == 0.
// Throws Error for a negative limit.
int64_t limited_count(int64_t n_items, int64_t limit);

// Global indices (ascending) of the items this shard evaluates, out of `n_items` loaded items.
// `limit` = 0: no limit. Throws Error if the shard would be empty (more shards than items).
std::vector<int64_t> select_items(int64_t n_items, int64_t limit, const ShardSpec& shard);

}  // namespace kvbits::eval
