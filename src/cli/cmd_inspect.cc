// `kvbits inspect MODEL`: the GGUF header, metadata and tensor table.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/gguf.h"
#include "io/tensor_type.h"

namespace kvbits::cli {

namespace {
struct InspectFlags {
  std::string path;
  size_t max_items = 8;
};

int inspect(const InspectFlags& f) {
  const GgufFile file = GgufFile::open(f.path);
  std::printf("file: %s\nGGUF version: %u\nsize: %s\nalignment: %llu\nmetadata: %zu keys\n", f.path.c_str(),
              file.version(), format_bytes(file.file_size()).c_str(),
              static_cast<unsigned long long>(file.alignment()), file.metadata_count());
  for (size_t i = 0; i < file.metadata_count(); ++i) {
    const std::string key(file.metadata_key(i));
    std::printf("  %-45s %s\n", key.c_str(), file.format_value(file.metadata_value(i), f.max_items).c_str());
  }
  std::printf("tensors: %zu\n  %-32s %-6s %-22s %12s\n", file.tensors().size(), "name", "type", "shape", "bytes");
  uint64_t total = 0;
  for (const GgufTensor& t : file.tensors()) {
    std::string shape = "[";
    for (size_t d = 0; d < t.shape.size(); ++d) shape += (d ? ", " : "") + std::to_string(t.shape[d]);
    shape += "]";
    std::printf("  %-32s %-6s %-22s %12llu\n", t.name.c_str(), tensor_type_name(t.type_id).c_str(), shape.c_str(),
                static_cast<unsigned long long>(t.n_bytes));
    total += t.n_bytes;
  }
  std::printf("tensor data: %s\n", format_bytes(total).c_str());
  return 0;
}
}  // namespace

Runner add_inspect_command(CLI::App& cmd) {
  auto f = std::make_shared<InspectFlags>();
  cmd.add_option("model", f->path, "GGUF file")->required();
  cmd.add_option("--max-items", f->max_items, "array items shown per metadata value");
  return [f] { return inspect(*f); };
}

}  // namespace kvbits::cli
