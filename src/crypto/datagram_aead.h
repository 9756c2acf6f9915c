// Per-datagram authenticated encryption for the UDP transport (AES-256-GCM via OpenSSL EVP),
// the X25519 + HKDF-SHA256 key schedule that feeds it, and the receiver's replay window.
//
// Key schedule (docs/udp.md): shared = X25519(own, peer); prk/okm = HKDF-SHA256(ikm = shared,
// salt = context, info = "ferry udp v1 s2r" | "ferry udp v1 r2s") -> 44 bytes = 32-byte key +
// 12-byte IV per direction. `context` binds the keys to the session (e.g. session id + both
// public keys). Each side seals with its outgoing keys and opens with its incoming keys.
//
// Nonce = IV XOR (0^4 || big-endian packet number): unique per key as long as a packet number is
// never reused in one direction, which the transport guarantees (pn strictly increasing).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ferry/status.h"

struct evp_cipher_ctx_st;
struct evp_pkey_st;

namespace ferry::crypto {

inline constexpr size_t kAeadKeySize = 32;
inline constexpr size_t kAeadIvSize = 12;
inline constexpr size_t kAeadTagSize = 16;
inline constexpr size_t kX25519KeySize = 32;

struct DirectionKeys {
  std::array<uint8_t, kAeadKeySize> key{};
  std::array<uint8_t, kAeadIvSize> iv{};
  bool operator==(const DirectionKeys&) const = default;
};

struct SessionKeys {
  DirectionKeys sender_to_receiver;
  DirectionKeys receiver_to_sender;
  bool is_sender = false;
  // This side's view: what it seals with and what it opens with.
  const DirectionKeys& outgoing() const { return is_sender ? sender_to_receiver : receiver_to_sender; }
  const DirectionKeys& incoming() const { return is_sender ? receiver_to_sender : sender_to_receiver; }
};

// HKDF-SHA256 from an already shared secret (X25519 output, or a TLS exporter secret).
Result<SessionKeys> derive_session_keys(std::span<const uint8_t> secret, std::span<const uint8_t> context,
                                        bool is_sender);

class KeyExchange {
 public:
  // Generates a fresh X25519 keypair. Check ok() (key generation can only fail if OpenSSL is broken).
  KeyExchange();
  ~KeyExchange();
  KeyExchange(const KeyExchange&) = delete;
  KeyExchange& operator=(const KeyExchange&) = delete;

  bool ok() const { return key_ != nullptr; }
  const std::array<uint8_t, kX25519KeySize>& public_key() const { return public_key_; }
  // X25519 with the peer's public key, then HKDF into both directions. Fails on a malformed
  // or low-order peer key (all-zero shared secret).
  Result<SessionKeys> derive(std::span<const uint8_t> peer_public, std::span<const uint8_t> context,
                             bool is_sender) const;
  // For when a TLS exporter secret is available instead of a key exchange.
  static SessionKeys derive_from_secret(std::span<const uint8_t> secret, std::span<const uint8_t> context,
                                        bool is_sender);

 private:
  evp_pkey_st* key_ = nullptr;
  std::array<uint8_t, kX25519KeySize> public_key_{};
};

// Seals datagrams under one direction's keys. One EVP context, keyed once; per packet only the
// nonce changes. Not thread-safe: one sealer per sending thread.
class DatagramSealer {
 public:
  explicit DatagramSealer(const DirectionKeys& keys);
  ~DatagramSealer();
  DatagramSealer(const DatagramSealer&) = delete;
  DatagramSealer& operator=(const DatagramSealer&) = delete;
  bool ok() const { return ctx_ != nullptr; }
  // Writes ciphertext followed by the 16-byte tag to out (room for plaintext.size() + 16);
  // returns the length written, 0 only if OpenSSL failed (an internal error).
  size_t seal(uint64_t pn, std::span<const uint8_t> aad, std::span<const uint8_t> plaintext, uint8_t* out);

 private:
  evp_cipher_ctx_st* ctx_ = nullptr;
  std::array<uint8_t, kAeadIvSize> iv_{};
};

class DatagramOpener {
 public:
  explicit DatagramOpener(const DirectionKeys& keys);
  ~DatagramOpener();
  DatagramOpener(const DatagramOpener&) = delete;
  DatagramOpener& operator=(const DatagramOpener&) = delete;
  bool ok() const { return ctx_ != nullptr; }
  // Verifies and decrypts ciphertext_with_tag into out (room for size - 16); returns the
  // plaintext length, or Error::kProtocol when the tag does not match (tampered body or header,
  // wrong packet number or key) or the input is shorter than a tag.
  Result<size_t> open(uint64_t pn, std::span<const uint8_t> aad, std::span<const uint8_t> ciphertext_with_tag,
                      uint8_t* out);

 private:
  evp_cipher_ctx_st* ctx_ = nullptr;
  std::array<uint8_t, kAeadIvSize> iv_{};
};

// Receiver-side anti-replay: a 4096-packet sliding bitmap below the largest pn seen. Call only
// after open() succeeded, so a forged packet cannot move the window.
class ReplayWindow {
 public:
  static constexpr uint64_t kWindow = 4096;
  // True if pn is new (and marks it); false for a repeat or a pn older than the window.
  bool check_and_mark(uint64_t pn);

 private:
  std::array<uint64_t, kWindow / 64> bits_{};  // bit (pn % kWindow) for pn in (largest - kWindow, largest]
  uint64_t largest_ = 0;
  bool any_ = false;
};

}  // namespace ferry::crypto
