// libFuzzer target: the receive journal reader (manifest/journal.cc, journal::parse), which
// reads a file any earlier (possibly crashed or hostile-rooted) run left behind.
// Properties: parse never fails or crashes, its byte counts stay within the input, and the
// intact prefix it reports parses to the same valid length again.
#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz_check.h"
#include "manifest/journal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  ferry::journal::Loaded loaded = ferry::journal::parse(bytes);
  FUZZ_CHECK(loaded.valid_bytes <= size);
  FUZZ_CHECK(loaded.valid_bytes + loaded.ignored_bytes <= size);
  if (loaded.header_ok) {
    ferry::journal::Loaded again = ferry::journal::parse(bytes.first(loaded.valid_bytes));
    FUZZ_CHECK(again.valid_bytes == loaded.valid_bytes);
    FUZZ_CHECK(again.files.size() == loaded.files.size());
  }
  return 0;
}
