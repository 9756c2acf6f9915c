// libFuzzer target: the manifest reader (manifest/manifest_file.cc) over arbitrary bytes, via
// ManifestReader::from_bytes (the same line reader and checks as a file). Reads entries
// until the end or the first error.
// Property: errors are sticky, as documented: after one, next() keeps returning it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "manifest/manifest_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto reader = ferry::ManifestReader::from_bytes(std::string(reinterpret_cast<const char*>(data), size),
                                                  "fuzz.manifest");
  if (!reader) return 0;
  ferry::ManifestEntry entry;
  while (true) {
    auto more = reader->next(&entry);
    if (!more) {
      FUZZ_CHECK(!reader->next(&entry).is_ok());
      break;
    }
    if (!*more) break;
    FUZZ_CHECK(!entry.entry.path.empty());
  }
  return 0;
}
