// The datagram keys of a UDP data path (docs/udp.md "Keys and sealing"). Over a TLS control
// connection they come from the TLS exporter (RFC 8446 §7.5), so they are as secret and as
// authenticated as the TLS session itself; over a plaintext control connection (both sides
// configured so) from the X25519 exchange in UDP_OPEN / UDP_ACCEPT, so even then no key ever
// travels in the clear.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "crypto/datagram_aead.h"
#include "ferry/status.h"
#include "transport/frame_socket.h"

namespace ferry::udp {

inline constexpr const char* kExporterLabel = "EXPORTER-ferry-udp-v1";

Result<crypto::SessionKeys> udp_session_keys(FrameSocket& control, const crypto::KeyExchange& kx,
                                             const std::array<uint8_t, crypto::kX25519KeySize>& peer_public,
                                             std::span<const uint8_t> context, bool is_sender);

}  // namespace ferry::udp
