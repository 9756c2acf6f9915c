#include "daemon/duration.h"

#include <cstdint>
#include <string>

namespace ferry::daemon {

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto bad = [&](const char* why) {
    return Status(Error::kUsage, "invalid duration '" + std::string(text) + "': " + why +
                                     " (expected e.g. 500ms, 20s, 90m, 12h, 30d, 2w)");
  };
  size_t i = 0;
  uint64_t n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (n > 1'000'000'000'000ull) return bad("too large");
    n = n * 10 + static_cast<uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) return bad("no number");
  std::string_view unit = text.substr(i);
  uint64_t ms_per_unit = 0;
  if (unit == "ms") ms_per_unit = 1;
  else if (unit == "s") ms_per_unit = 1000;
  else if (unit == "m") ms_per_unit = 60'000;
  else if (unit == "h") ms_per_unit = 3'600'000;
  else if (unit == "d") ms_per_unit = 86'400'000;
  else if (unit == "w") ms_per_unit = 7 * 86'400'000ull;
  else return bad(unit.empty() ? "missing unit" : "unknown unit");
  constexpr uint64_t kMaxMs = 100ull * 366 * 86'400'000ull;
  if (n > kMaxMs / ms_per_unit) return bad("longer than 100 years");
  return std::chrono::milliseconds(static_cast<int64_t>(n * ms_per_unit));
}

}  // namespace ferry::daemon
