#include "transport/udp/udp_keys.h"

namespace ferry::udp {

Result<crypto::SessionKeys> udp_session_keys(FrameSocket& control, const crypto::KeyExchange& kx,
                                             const std::array<uint8_t, crypto::kX25519KeySize>& peer_public,
                                             std::span<const uint8_t> context, bool is_sender) {
  if (control.encrypted()) {
    auto secret = control.export_keying_material(kExporterLabel, context, 32);
    if (!secret) return secret.status();
    return crypto::KeyExchange::derive_from_secret(*secret, context, is_sender);
  }
  return kx.derive({peer_public.data(), peer_public.size()}, context, is_sender);
}

}  // namespace ferry::udp
