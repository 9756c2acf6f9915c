// libFuzzer target: the UDP datagram parsers (transport/udp/datagram_format.cc): the header
// and, as the plaintext a peer's key could have sealed, the DATA and ACK bodies.
// Property: an ACK the decoder accepts re-encodes to the same bytes and decodes equal.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fuzz_check.h"
#include "transport/udp/datagram_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::udp;
  std::span<const uint8_t> in(data, size);
  auto header = decode_header(in);
  if (!header || in.size() < kHeaderSize) return 0;
  std::span<const uint8_t> body = in.subspan(kHeaderSize);
  switch (header->kind) {
    case DatagramKind::kData: {
      auto d = decode_data_body(body);
      if (d) {
        FUZZ_CHECK(!d->fragment.empty());
        FUZZ_CHECK(d->fragment.data() >= body.data() && d->fragment.data() + d->fragment.size() <= body.data() + body.size());
      }
      break;
    }
    case DatagramKind::kAck: {
      auto a = decode_ack_body(body);
      if (a) {
        FUZZ_CHECK(!a->ranges.empty() && a->ranges.front().last == a->largest_acked);
        std::vector<uint8_t> again = encode_ack_body(*a);
        FUZZ_CHECK(again.size() == ack_body_size(*a));
        FUZZ_CHECK(again.size() == body.size() && std::equal(again.begin(), again.end(), body.begin()));
        auto b = decode_ack_body(again);
        FUZZ_CHECK(b.is_ok() && *b == *a);
      }
      break;
    }
    case DatagramKind::kProbe:
      break;
  }
  return 0;
}
