#include "codec/xxh3_kernels.h"
#include "codec/xxh3_kernels.inc"

namespace ferry::xxh3 {

const Kernels kGeneric{"sse2", k_hash64, k_hash128, k_update128, k_update64};

const Kernels& kernels() {
  static const Kernels& chosen = __builtin_cpu_supports("avx2") ? kAvx2 : kGeneric;
  return chosen;
}

}  // namespace ferry::xxh3
