// Durations in config files and flags: "20s", "500ms", "90m", "12h", "30d", "2w".
#pragma once

#include <chrono>
#include <string_view>

#include "ferry/status.h"

namespace ferry::daemon {

// A whole number followed by one unit (ms, s, m, h, d, w). kUsage naming the text otherwise;
// values above 100 years are refused (they overflow nothing, but are always typos).
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace ferry::daemon
