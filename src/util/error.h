#pragma once
// Error reporting for library code: throw kvbits::Error with a one-line, user-readable message
// (e.g. "model.gguf: tensor 'blk.0.attn_q.weight' data runs past end of file (offset 123, size 456)").
// Library code never exits; frontends catch Error, print "error: <what()>" and return non-zero.
#include <stdexcept>
#include <string>

namespace kvbits {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace kvbits
