// libFuzzer target: the receive journal reader (manifest/journal.cc, journal::parse), which
// reads a file any earlier (possibly crashed) run left behind.
// Every record carries an XXH3-64 of its body, which random mutations almost never match, so
// on its own the fuzzer would only exercise the framing. When the first input byte is odd
// the harness therefore drops that byte and rewrites each record's checksum to match its
// body first, so record bodies of every shape reach the decoder.
// Properties: parse never fails or crashes, its byte counts stay within the input, and the
// intact prefix it reports parses to the same state again.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/hash.h"
#include "core/byte_order.h"
#include "fuzz_check.h"
#include "manifest/journal.h"

namespace {

using namespace ferry::journal;

// Rewrites the checksum of every record whose length field fits in the image.
void fix_checksums(std::vector<uint8_t>& image) {
  size_t pos = sizeof kMagic;
  while (image.size() >= pos + kRecordHeaderSize) {
    uint32_t len = ferry::load_be32(&image[pos]);
    if (len == 0 || len > kMaxRecordBody || image.size() - pos - kRecordHeaderSize < len) return;
    ferry::store_be64(&image[pos + 4], ferry::xxh3_64(&image[pos + kRecordHeaderSize], len));
    pos += kRecordHeaderSize + len;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> image(data, data + size);
  if (size > 0 && (data[0] & 1) != 0) {
    image.erase(image.begin());
    fix_checksums(image);
  }
  std::span<const uint8_t> bytes(image);
  Loaded loaded = parse(bytes);
  FUZZ_CHECK(loaded.valid_bytes <= bytes.size());
  FUZZ_CHECK(loaded.valid_bytes + loaded.ignored_bytes == bytes.size());
  if (loaded.header_ok) {
    Loaded again = parse(bytes.first(loaded.valid_bytes));
    FUZZ_CHECK(again.valid_bytes == loaded.valid_bytes);
    FUZZ_CHECK(again.next_slot == loaded.next_slot);
    FUZZ_CHECK(again.files.size() == loaded.files.size());
  }
  return 0;
}
