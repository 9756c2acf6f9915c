#include "core/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>

namespace ferry {
namespace {

// Splits "1.5G" into 1.5 and "G". Returns false on malformed numbers.
bool split_number(std::string_view text, double* number, std::string* suffix) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return false;
  std::string num(text.substr(0, i));
  if (num.find('.') != num.rfind('.')) return false;
  char* end = nullptr;
  *number = std::strtod(num.c_str(), &end);
  if (end != num.c_str() + num.size()) return false;
  suffix->clear();
  for (char c : text.substr(i)) {
    if (c == ' ') continue;
    suffix->push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return true;
}

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
  double n = 0;
  std::string suffix;
  if (!split_number(text, &n, &suffix))
    return Status(Error::kUsage, "invalid size '" + std::string(text) + "' (expected e.g. 4M, 1.5G, 65536)");
  double mult = 1;
  if (suffix.empty() || suffix == "B") mult = 1;
  else if (suffix == "K" || suffix == "KB" || suffix == "KIB") mult = 1024.0;
  else if (suffix == "M" || suffix == "MB" || suffix == "MIB") mult = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "GB" || suffix == "GIB") mult = 1024.0 * 1024 * 1024;
  else if (suffix == "T" || suffix == "TB" || suffix == "TIB") mult = 1024.0 * 1024 * 1024 * 1024;
  else
    return Status(Error::kUsage, "invalid size '" + std::string(text) + "': unknown suffix '" + suffix + "' (use K, M, G or T)");
  double v = n * mult;
  if (!(v < std::ldexp(1.0, 62)))
    return Status(Error::kUsage, "size '" + std::string(text) + "' is too large");
  return static_cast<uint64_t>(std::llround(v));
}

Result<uint64_t> parse_bit_rate(std::string_view text) {
  // Bits unless the user wrote bytes: "800M", "800Mbps", "800Mbit" are bits per second;
  // "100MB/s", "100MBps" (capital B) are bytes per second and count 8 bits each.
  std::string_view t = text;
  size_t digits = 0;
  while (digits < t.size() && (std::isdigit(static_cast<unsigned char>(t[digits])) || t[digits] == '.')) ++digits;
  std::string_view unit = t.substr(digits);
  double per_unit = 1;
  for (auto [tail, factor] : {std::pair<std::string_view, double>{"B/s", 8}, {"Bps", 8}, {"bit/s", 1}, {"bps", 1},
                               {"bit", 1}, {"b/s", 1}}) {
    if (unit.size() >= tail.size() && unit.substr(unit.size() - tail.size()) == tail) {
      unit = unit.substr(0, unit.size() - tail.size());
      per_unit = factor;
      break;
    }
  }
  double n = 0;
  std::string suffix;
  std::string head = std::string(t.substr(0, digits)) + std::string(unit);
  if (!split_number(head, &n, &suffix))
    return Status(Error::kUsage, "invalid rate '" + std::string(text) + "' (expected e.g. 800M, 1G bits/s)");
  double mult = 1;
  if (suffix.empty()) mult = 1;
  else if (suffix == "K") mult = 1e3;
  else if (suffix == "M") mult = 1e6;
  else if (suffix == "G") mult = 1e9;
  else
    return Status(Error::kUsage, "invalid rate '" + std::string(text) + "': unknown suffix (use K, M or G; bits/s, or B/s for bytes)");
  double v = n * mult * per_unit;
  if (!(v < std::ldexp(1.0, 62))) return Status(Error::kUsage, "rate '" + std::string(text) + "' is too large");
  return static_cast<uint64_t>(std::llround(v));
}

std::string format_bytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

}  // namespace ferry
