// XXH3 compiled twice: for baseline x86-64 (SSE2) and for AVX2, chosen once at run time.
// Debian's libxxhash is built for the baseline only; hashing is a quarter of the CPU a
// transfer spends, and the AVX2 kernels are about twice as fast where the CPU has them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferry::xxh3 {

struct Kernels {
  const char* name;
  uint64_t (*hash64)(const void* data, size_t len);
  void (*hash128)(const void* data, size_t len, uint64_t* high, uint64_t* low);
  // `state` is an XXH3_state_t (same layout for every kernel).
  void (*update128)(void* state, const void* data, size_t len);
  void (*update64)(void* state, const void* data, size_t len);
};

const Kernels& kernels();

// Per-ISA instances (defined in xxh3_generic.cc / xxh3_avx2.cc).
extern const Kernels kGeneric;
extern const Kernels kAvx2;

}  // namespace ferry::xxh3
