// Tests for src/crypto/datagram_aead.{h,cc}: key exchange, seal/open, tamper and replay rejection.
#include "crypto/datagram_aead.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ferry::crypto {
namespace {

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

struct Pair {
  SessionKeys sender, receiver;
};

Pair exchanged_keys() {
  KeyExchange a, b;
  EXPECT_TRUE(a.ok());
  EXPECT_TRUE(b.ok());
  const auto ctx = bytes("session 42");
  auto s = a.derive(b.public_key(), ctx, /*is_sender=*/true);
  auto r = b.derive(a.public_key(), ctx, /*is_sender=*/false);
  EXPECT_TRUE(s) << s.status().to_string();
  EXPECT_TRUE(r) << r.status().to_string();
  return {s.value(), r.value()};
}

TEST(KeyExchange, BothSidesDeriveMatchingKeysAndDistinctDirections) {
  const Pair p = exchanged_keys();
  EXPECT_EQ(p.sender.outgoing(), p.receiver.incoming());
  EXPECT_EQ(p.sender.incoming(), p.receiver.outgoing());
  EXPECT_NE(p.sender.sender_to_receiver.key, p.sender.receiver_to_sender.key);
  EXPECT_NE(p.sender.sender_to_receiver.iv, p.sender.receiver_to_sender.iv);
}

TEST(KeyExchange, DifferentContextGivesDifferentKeys) {
  KeyExchange a, b;
  auto k1 = a.derive(b.public_key(), bytes("session 1"), true);
  auto k2 = a.derive(b.public_key(), bytes("session 2"), true);
  ASSERT_TRUE(k1 && k2);
  EXPECT_NE(k1->sender_to_receiver.key, k2->sender_to_receiver.key);
}

TEST(KeyExchange, BadPeerKeysAreRejected) {
  KeyExchange a;
  std::vector<uint8_t> short_key(31, 7);
  EXPECT_EQ(a.derive(short_key, {}, true).status().code(), Error::kProtocol);
  std::vector<uint8_t> zero(32, 0);  // low-order point: all-zero shared secret
  EXPECT_FALSE(a.derive(zero, {}, true));
}

TEST(KeyExchange, DeriveFromSecretIsDeterministic) {
  const auto secret = bytes("an exporter secret of some length");
  const SessionKeys s = KeyExchange::derive_from_secret(secret, bytes("ctx"), true);
  const SessionKeys r = KeyExchange::derive_from_secret(secret, bytes("ctx"), false);
  EXPECT_EQ(s.outgoing(), r.incoming());
  EXPECT_EQ(s.incoming(), r.outgoing());
  EXPECT_NE(s.outgoing(), s.incoming());
}

class SealOpen : public ::testing::Test {
 protected:
  Pair keys = exchanged_keys();
  DatagramSealer sealer{keys.sender.outgoing()};
  DatagramOpener opener{keys.receiver.incoming()};
  std::vector<uint8_t> aad = {0x01, 0, 0, 0, 0, 0, 0, 0, 7};
  std::vector<uint8_t> plain = bytes("fragment of a chunk: 0123456789abcdef");

  std::vector<uint8_t> seal(uint64_t pn) {
    std::vector<uint8_t> out(plain.size() + kAeadTagSize);
    EXPECT_EQ(sealer.seal(pn, aad, plain, out.data()), out.size());
    return out;
  }
};

TEST_F(SealOpen, RoundTrip) {
  for (uint64_t pn : {0ull, 1ull, 7ull, 1ull << 40}) {
    const auto ct = seal(pn);
    EXPECT_NE(std::vector<uint8_t>(ct.begin(), ct.begin() + plain.size()), plain);
    std::vector<uint8_t> out(ct.size());
    auto n = opener.open(pn, aad, ct, out.data());
    ASSERT_TRUE(n) << n.status().to_string();
    out.resize(*n);
    EXPECT_EQ(out, plain);
  }
}

TEST_F(SealOpen, EmptyPlaintextStillAuthenticates) {
  plain.clear();
  const auto ct = seal(3);
  EXPECT_EQ(ct.size(), kAeadTagSize);
  uint8_t out[1];
  EXPECT_TRUE(opener.open(3, aad, ct, out));
  aad[0] ^= 1;
  EXPECT_FALSE(opener.open(3, aad, ct, out));
}

TEST_F(SealOpen, TamperedCiphertextTagHeaderOrPnIsRejected) {
  const auto ct = seal(9);
  std::vector<uint8_t> out(ct.size());
  for (size_t i : {size_t{0}, plain.size() / 2, ct.size() - 1}) {  // body byte and tag byte
    auto bad = ct;
    bad[i] ^= 0x40;
    auto r = opener.open(9, aad, bad, out.data());
    EXPECT_FALSE(r) << i;
    EXPECT_EQ(r.status().code(), Error::kProtocol);
  }
  auto bad_aad = aad;
  bad_aad[8] ^= 1;
  EXPECT_FALSE(opener.open(9, bad_aad, ct, out.data()));
  EXPECT_FALSE(opener.open(10, aad, ct, out.data()));
  EXPECT_FALSE(opener.open(9, aad, std::span<const uint8_t>(ct.data(), kAeadTagSize - 1), out.data()));
  // The opener still works after failures (its context is re-initialised per packet).
  EXPECT_TRUE(opener.open(9, aad, ct, out.data()));
}

TEST_F(SealOpen, WrongDirectionKeyIsRejected) {
  const auto ct = seal(5);
  DatagramOpener wrong(keys.receiver.outgoing());
  std::vector<uint8_t> out(ct.size());
  EXPECT_FALSE(wrong.open(5, aad, ct, out.data()));
}

TEST(ReplayWindow, RejectsRepeatsAndTooOld) {
  ReplayWindow w;
  EXPECT_TRUE(w.check_and_mark(0));
  EXPECT_FALSE(w.check_and_mark(0));
  EXPECT_TRUE(w.check_and_mark(10));
  EXPECT_TRUE(w.check_and_mark(5));  // late but inside the window
  EXPECT_FALSE(w.check_and_mark(5));
  EXPECT_FALSE(w.check_and_mark(10));
  EXPECT_TRUE(w.check_and_mark(10 + ReplayWindow::kWindow));
  EXPECT_FALSE(w.check_and_mark(10));  // now too old
  EXPECT_FALSE(w.check_and_mark(5));
  EXPECT_TRUE(w.check_and_mark(11));  // inside the window, bit was cleared when the window slid
  EXPECT_FALSE(w.check_and_mark(11));
  EXPECT_TRUE(w.check_and_mark(1'000'000));  // big jump clears everything
  EXPECT_TRUE(w.check_and_mark(1'000'000 - 1));
  EXPECT_FALSE(w.check_and_mark(1'000'000 - ReplayWindow::kWindow));
}

}  // namespace
}  // namespace ferry::crypto
