// Compiled with -mavx2 (CMakeLists.txt); only called when the CPU has AVX2.
#include "codec/xxh3_kernels.h"
#include "codec/xxh3_kernels.inc"

namespace ferry::xxh3 {

const Kernels kAvx2{"avx2", k_hash64, k_hash128, k_update128, k_update64};

}  // namespace ferry::xxh3
