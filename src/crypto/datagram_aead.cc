#include "crypto/datagram_aead.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/byte_order.h"

namespace ferry::crypto {

namespace {

constexpr char kInfoSenderToReceiver[] = "ferry udp v1 s2r";
constexpr char kInfoReceiverToSender[] = "ferry udp v1 r2s";

bool hkdf_sha256(std::span<const uint8_t> ikm, std::span<const uint8_t> salt, const char* info,
                 uint8_t* out, size_t out_len) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return false;
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return false;
  char digest[] = "SHA256";
  // HKDF rejects an empty salt buffer pointer; a zero-length salt is the RFC 5869 default anyway.
  static const uint8_t kEmpty[1] = {0};
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm.data()), ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                        const_cast<uint8_t*>(salt.empty() ? kEmpty : salt.data()), salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info), std::strlen(info)),
      OSSL_PARAM_construct_end(),
  };
  const bool ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
  EVP_KDF_CTX_free(ctx);
  return ok;
}

bool derive_direction(std::span<const uint8_t> secret, std::span<const uint8_t> context, const char* info,
                      DirectionKeys& keys) {
  uint8_t okm[kAeadKeySize + kAeadIvSize];
  if (!hkdf_sha256(secret, context, info, okm, sizeof okm)) return false;
  std::memcpy(keys.key.data(), okm, kAeadKeySize);
  std::memcpy(keys.iv.data(), okm + kAeadKeySize, kAeadIvSize);
  return true;
}

// IV XOR (0^4 || pn as 8 big-endian bytes).
void make_nonce(const std::array<uint8_t, kAeadIvSize>& iv, uint64_t pn, uint8_t* nonce) {
  uint8_t pn_be[8];
  store_be64(pn_be, pn);
  std::memcpy(nonce, iv.data(), kAeadIvSize);
  for (int i = 0; i < 8; ++i) nonce[4 + i] ^= pn_be[i];
}

EVP_CIPHER_CTX* keyed_context(const DirectionKeys& keys, bool encrypt) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return nullptr;
  const int ok = encrypt ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, keys.key.data(), nullptr)
                         : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, keys.key.data(), nullptr);
  if (ok != 1 || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, kAeadIvSize, nullptr) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

}  // namespace

Result<SessionKeys> derive_session_keys(std::span<const uint8_t> secret, std::span<const uint8_t> context,
                                        bool is_sender) {
  SessionKeys keys;
  keys.is_sender = is_sender;
  if (!derive_direction(secret, context, kInfoSenderToReceiver, keys.sender_to_receiver) ||
      !derive_direction(secret, context, kInfoReceiverToSender, keys.receiver_to_sender)) {
    return Status(Error::kInternal, "udp key schedule: OpenSSL HKDF-SHA256 failed");
  }
  return keys;
}

KeyExchange::KeyExchange() {
  EVP_PKEY_CTX* pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr);
  if (pctx == nullptr) return;
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_keygen_init(pctx) == 1 && EVP_PKEY_keygen(pctx, &key) == 1) {
    size_t len = public_key_.size();
    if (EVP_PKEY_get_raw_public_key(key, public_key_.data(), &len) == 1 && len == kX25519KeySize) {
      key_ = key;
      key = nullptr;
    }
  }
  EVP_PKEY_free(key);
  EVP_PKEY_CTX_free(pctx);
}

KeyExchange::~KeyExchange() { EVP_PKEY_free(key_); }

Result<SessionKeys> KeyExchange::derive(std::span<const uint8_t> peer_public, std::span<const uint8_t> context,
                                        bool is_sender) const {
  if (key_ == nullptr) return Status(Error::kInternal, "udp key exchange: no X25519 key (generation failed)");
  if (peer_public.size() != kX25519KeySize) {
    return Status(Error::kProtocol, "udp key exchange: peer public key is " + std::to_string(peer_public.size()) +
                                        " bytes, expected 32");
  }
  EVP_PKEY* peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(), peer_public.size());
  if (peer == nullptr) return Status(Error::kProtocol, "udp key exchange: peer public key rejected by X25519");
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key_, nullptr);
  uint8_t shared[kX25519KeySize] = {};
  size_t shared_len = sizeof shared;
  const bool ok = ctx != nullptr && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
                  EVP_PKEY_derive(ctx, shared, &shared_len) == 1 && shared_len == kX25519KeySize;
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(peer);
  uint8_t any = 0;
  for (uint8_t b : shared) any |= b;
  if (!ok || any == 0) {
    return Status(Error::kProtocol, "udp key exchange: X25519 with the peer's key failed (low-order or invalid key)");
  }
  auto keys = derive_session_keys(std::span<const uint8_t>(shared, sizeof shared), context, is_sender);
  std::memset(shared, 0, sizeof shared);
  return keys;
}

SessionKeys KeyExchange::derive_from_secret(std::span<const uint8_t> secret, std::span<const uint8_t> context,
                                            bool is_sender) {
  auto keys = derive_session_keys(secret, context, is_sender);
  // HKDF-SHA256 is part of every OpenSSL 3 default provider; if it is missing nothing can be
  // encrypted safely, and continuing with zero keys would be worse than stopping.
  if (!keys) std::abort();
  return std::move(keys).value();
}

DatagramSealer::DatagramSealer(const DirectionKeys& keys) : ctx_(keyed_context(keys, true)), iv_(keys.iv) {}
DatagramSealer::~DatagramSealer() { EVP_CIPHER_CTX_free(ctx_); }

size_t DatagramSealer::seal(uint64_t pn, std::span<const uint8_t> aad, std::span<const uint8_t> plaintext,
                            uint8_t* out) {
  if (ctx_ == nullptr) return 0;
  uint8_t nonce[kAeadIvSize];
  make_nonce(iv_, pn, nonce);
  int len = 0;
  int total = 0;
  if (EVP_EncryptInit_ex(ctx_, nullptr, nullptr, nullptr, nonce) != 1) return 0;
  if (!aad.empty() && EVP_EncryptUpdate(ctx_, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) return 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(ctx_, out, &len, plaintext.data(), static_cast<int>(plaintext.size())) != 1) return 0;
    total = len;
  }
  if (EVP_EncryptFinal_ex(ctx_, out + total, &len) != 1) return 0;
  total += len;
  if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, kAeadTagSize, out + total) != 1) return 0;
  return static_cast<size_t>(total) + kAeadTagSize;
}

DatagramOpener::DatagramOpener(const DirectionKeys& keys) : ctx_(keyed_context(keys, false)), iv_(keys.iv) {}
DatagramOpener::~DatagramOpener() { EVP_CIPHER_CTX_free(ctx_); }

Result<size_t> DatagramOpener::open(uint64_t pn, std::span<const uint8_t> aad,
                                    std::span<const uint8_t> ciphertext_with_tag, uint8_t* out) {
  if (ctx_ == nullptr) return Status(Error::kInternal, "udp datagram open: cipher context unavailable");
  if (ciphertext_with_tag.size() < kAeadTagSize) {
    return Status(Error::kProtocol, "udp datagram pn " + std::to_string(pn) + ": body shorter than the AEAD tag");
  }
  const size_t ct_len = ciphertext_with_tag.size() - kAeadTagSize;
  uint8_t nonce[kAeadIvSize];
  make_nonce(iv_, pn, nonce);
  uint8_t tag[kAeadTagSize];
  std::memcpy(tag, ciphertext_with_tag.data() + ct_len, kAeadTagSize);
  int len = 0;
  int total = 0;
  bool ok = EVP_DecryptInit_ex(ctx_, nullptr, nullptr, nullptr, nonce) == 1;
  if (ok && !aad.empty()) ok = EVP_DecryptUpdate(ctx_, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1;
  if (ok && ct_len > 0) {
    ok = EVP_DecryptUpdate(ctx_, out, &len, ciphertext_with_tag.data(), static_cast<int>(ct_len)) == 1;
    total = len;
  }
  if (ok) ok = EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, kAeadTagSize, tag) == 1;
  if (ok) ok = EVP_DecryptFinal_ex(ctx_, out + total, &len) == 1;
  if (!ok) {
    return Status(Error::kProtocol, "udp datagram pn " + std::to_string(pn) +
                                        ": authentication failed (tampered, wrong key or wrong packet number)");
  }
  return static_cast<size_t>(total + len);
}

bool ReplayWindow::check_and_mark(uint64_t pn) {
  auto bit = [this](uint64_t p) -> std::pair<uint64_t&, uint64_t> {
    const uint64_t i = p % kWindow;
    return {bits_[i / 64], uint64_t{1} << (i % 64)};
  };
  if (!any_ || pn > largest_) {
    // Slide: clear the bits of every pn that enters the window above the old largest.
    if (any_) {
      if (pn - largest_ >= kWindow) {
        bits_.fill(0);
      } else {
        for (uint64_t p = largest_ + 1; p <= pn; ++p) {
          auto [word, mask] = bit(p);
          word &= ~mask;
        }
      }
    }
    any_ = true;
    largest_ = pn;
    auto [word, mask] = bit(pn);
    word |= mask;
    return true;
  }
  if (largest_ - pn >= kWindow) return false;  // too old to tell: reject
  auto [word, mask] = bit(pn);
  if (word & mask) return false;
  word |= mask;
  return true;
}

}  // namespace ferry::crypto
