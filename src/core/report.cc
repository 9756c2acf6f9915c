#include <cstdio>

#include "ferry/report.h"

namespace ferry {

std::string json_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  size_t i = 0;
  auto hex = [&](unsigned c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04x", c);
    out += buf;
  };
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"') { out += "\\\""; ++i; continue; }
    if (c == '\\') { out += "\\\\"; ++i; continue; }
    if (c < 0x20) { hex(c); ++i; continue; }
    if (c < 0x80) { out.push_back(static_cast<char>(c)); ++i; continue; }
    // Copy a well-formed UTF-8 sequence as is; escape stray bytes one by one.
    int len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    if (ok) {
      // Decode to reject overlong forms, UTF-16 surrogates and code points past U+10FFFF.
      uint32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
      for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      hex(c);
      ++i;
    }
  }
  return out;
}

int TransferReport::exit_code() const {
  if (is_sync && status.is_ok() && !sync.changed()) return kSyncNothingToDo;
  return ferry::exit_code(status.code());
}

std::string TransferReport::to_json() const {
  std::string j = "{";
  auto num = [&](const char* k, uint64_t v) { j += "\"" + std::string(k) + "\":" + std::to_string(v) + ","; };
  j += "\"ok\":" + std::string(status.is_ok() ? "true" : "false") + ",";
  j += "\"exit_code\":" + std::to_string(exit_code()) + ",";
  j += "\"error\":\"" + json_escape(status.is_ok() ? "" : status.to_string()) + "\",";
  num("files_total", files_total);
  num("files_sent", files_sent);
  num("files_skipped", files_skipped);
  num("files_failed", files_failed);
  num("bytes_on_disk", bytes_on_disk);
  num("bytes_on_wire", bytes_on_wire);
  num("chunks_sent", chunks_sent);
  num("chunks_resent", chunks_resent);
  num("chunks_resumed", chunks_resumed);
  num("bytes_resumed", bytes_resumed);
  num("reconnects", reconnects);
  j += "\"encrypted\":" + std::string(encrypted ? "true" : "false") + ",";
  char secs[64];
  std::snprintf(secs, sizeof secs, "\"seconds\":%.3f,", seconds);
  j += secs;
  double mbps = seconds > 0 ? static_cast<double>(bytes_on_disk) / seconds / 1e6 : 0;
  std::snprintf(secs, sizeof secs, "\"throughput_MBps\":%.1f,", mbps);
  j += secs;
  if (is_sync) {
    j += "\"sync\":{\"dry_run\":" + std::string(sync.dry_run ? "true" : "false") + ",\"send\":" +
         std::to_string(sync.send) + ",\"update\":" + std::to_string(sync.update) + ",\"delete\":" +
         std::to_string(sync.remove) + ",\"skip\":" + std::to_string(sync.skip) + ",\"send_bytes\":" +
         std::to_string(sync.send_bytes) + ",\"update_bytes\":" + std::to_string(sync.update_bytes) +
         ",\"deleted\":" + std::to_string(sync.deleted) + "},";
  }
  if (udp.used) {
    char b[512];
    double goodput = udp.data_seconds > 0 ? static_cast<double>(bytes_on_disk - bytes_resumed) * 8 / udp.data_seconds : 0;
    std::snprintf(b, sizeof b,
                  "\"udp\":{\"policy\":\"%s\",\"packets_sent\":%llu,\"packets_lost\":%llu,\"packets_spurious\":%llu,"
                  "\"datagram_bytes\":%llu,\"retransmitted_bytes\":%llu,\"redundant_bytes\":%llu,"
                  "\"auth_failures\":%llu,\"data_seconds\":%.3f,\"data_goodput_bps\":%.0f,\"srtt_ms\":%.2f,"
                  "\"min_rtt_ms\":%.2f,\"bandwidth_estimate_bps\":%.0f},",
                  json_escape(udp.policy).c_str(), static_cast<unsigned long long>(udp.packets_sent),
                  static_cast<unsigned long long>(udp.packets_lost), static_cast<unsigned long long>(udp.packets_spurious),
                  static_cast<unsigned long long>(udp.datagram_bytes),
                  static_cast<unsigned long long>(udp.retransmitted_bytes),
                  static_cast<unsigned long long>(udp.redundant_bytes),
                  static_cast<unsigned long long>(udp.auth_failures), udp.data_seconds, goodput, udp.srtt_ms,
                  udp.min_rtt_ms, udp.bandwidth_estimate_bps);
    j += b;
  }
  j += "\"files\":[";
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& f = files[i];
    if (i) j += ",";
    j += "{\"path\":\"" + json_escape(f.path) + "\",\"type\":\"" + f.type + "\",\"size\":" + std::to_string(f.size) +
         ",\"action\":\"" + f.action + "\"";
    if (!f.xxh3_128.empty()) j += ",\"xxh3_128\":\"" + f.xxh3_128 + "\"";
    if (!f.error.empty()) j += ",\"error\":\"" + json_escape(f.error) + "\"";
    j += "}";
  }
  j += "]}";
  return j;
}

}  // namespace ferry
