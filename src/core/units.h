// Parsing of human sizes ("4M", "1.5G", "512K", "100") and durations for flags and config.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ferry/status.h"

namespace ferry {

// Binary multiples: K = 1024, M = 1024^2, G = 1024^3, T = 1024^4; an optional trailing 'B'
// or 'iB' is accepted ("4MiB", "4MB", "4M"). Fractions are allowed ("1.5G"). Rejects
// negatives, empty strings, unknown suffixes and values above 2^62.
Result<uint64_t> parse_size(std::string_view text);

// Rates in bits per second with decimal multiples (K = 1000, M = 10^6, G = 10^9) as network
// people expect: "800M" = 800 Mbit/s. A trailing "bps"/"bit" is accepted.
Result<uint64_t> parse_bit_rate(std::string_view text);

// "1.5 GiB", "12.0 MiB", "512 B": for progress lines and logs.
std::string format_bytes(uint64_t bytes);

}  // namespace ferry
