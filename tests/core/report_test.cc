// Tests for include/ferry/report.h, src/core/report.cc: TransferReport::to_json and
// json_escape. Validity is checked by a real JSON parser (python3, strict UTF-8).
#include "ferry/report.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ferry {
namespace {

// Strict JSON check: bytes must be UTF-8 (RFC 8259 section 8.1) and NaN/Infinity are refused.
constexpr const char* kStrictLoad =
    "import json,sys\n"
    "def no_constants(c): raise ValueError('non-JSON constant ' + c)\n"
    "d = json.loads(sys.stdin.buffer.read().decode('utf-8', 'strict'), parse_constant=no_constants)\n";

// The system interpreter when there is one (a pyenv shim costs ~0.5 s per start).
std::string python() { return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

std::string temp_path(const char* suffix) {
  std::string tmpl = ::testing::TempDir() + "ferry_report_test_XXXXXX" + suffix;
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = mkstemps(buf.data(), static_cast<int>(std::string(suffix).size()));
  EXPECT_GE(fd, 0) << "mkstemps " << tmpl;
  if (fd >= 0) close(fd);
  return buf.data();
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  ASSERT_TRUE(f.good()) << path;
}

// Pipes `json` into python3's json parser via popen; true if it parsed.
bool python_accepts(const std::string& json) {
  std::string script = temp_path(".py");
  write_file(script, kStrictLoad);
  std::string cmd = python() + " '" + script + "' 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "w");
  EXPECT_NE(p, nullptr) << cmd;
  if (!p) return false;
  size_t written = std::fwrite(json.data(), 1, json.size(), p);
  int rc = pclose(p);
  std::remove(script.c_str());
  EXPECT_EQ(written, json.size());
  return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

// Parses `json` with python3 and prints each expression (evaluated with the document bound to
// `d`) as ASCII JSON, one per line. Returns those lines; empty when parsing failed.
std::vector<std::string> python_eval(const std::string& json, const std::vector<std::string>& exprs) {
  std::string data = temp_path(".json");
  std::string script = temp_path(".py");
  write_file(data, json);
  std::string code = kStrictLoad;
  code += "for e in sys.argv[1:]:\n    print(json.dumps(eval(e), ensure_ascii=True))\n";
  write_file(script, code);
  std::string cmd = python() + " '" + script + "'";
  for (const auto& e : exprs) cmd += " \"" + e + "\"";
  cmd += " < '" + data + "'";
  std::vector<std::string> lines;
  FILE* p = popen(cmd.c_str(), "r");
  EXPECT_NE(p, nullptr) << cmd;
  if (p) {
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int rc = pclose(p);
    EXPECT_TRUE(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << "python3 failed on: " << json;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  std::remove(data.c_str());
  std::remove(script.c_str());
  return lines;
}

// Strict UTF-8 (Unicode table 3-7): no overlongs, no surrogates, nothing above U+10FFFF.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  while (i < s.size()) {
    unsigned char c = byte(i);
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c == 0xED) { len = 3; hi = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else return false;
    if (i + len > s.size()) return false;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return false;
    for (size_t k = 2; k < len; ++k)
      if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return false;
    i += len;
  }
  return true;
}

std::string all_control_characters() {
  std::string s;
  for (int c = 1; c < 0x20; ++c) s.push_back(static_cast<char>(c));
  return s;
}

TransferReport sample_report() {
  TransferReport r;
  r.status = Status::ok();
  r.files_total = 5;
  r.files_sent = 2;
  r.files_skipped = 2;
  r.files_failed = 1;
  r.bytes_on_disk = 5'000'000;
  r.bytes_on_wire = 5'000'123;
  r.chunks_sent = 17;
  r.chunks_resent = 3;
  r.chunks_resumed = 4;
  r.bytes_resumed = 16'777'216;
  r.reconnects = 2;
  r.seconds = 2.5;
  r.files.push_back({"a.txt", "file", 5'000'000, "sent", "0123456789abcdef0123456789abcdef", ""});
  r.files.push_back({"dir", "dir", 0, "ok", "", ""});
  r.files.push_back({"bad", "file", 10, "failed", "", "refused: path escapes"});
  return r;
}

// ---------------------------------------------------------------------------------------
// json_escape

TEST(JsonEscape, PlainAsciiIsUnchanged) {
  EXPECT_EQ(json_escape(""), "");
  EXPECT_EQ(json_escape("shots/seq 010/plate_v002.1001.exr"), "shots/seq 010/plate_v002.1001.exr");
  EXPECT_EQ(json_escape("~!@#$%^&*()_+`-={}[]|:;'<>?,./"), "~!@#$%^&*()_+`-={}[]|:;'<>?,./");
}

TEST(JsonEscape, QuoteAndBackslashAreEscaped) {
  EXPECT_EQ(json_escape("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(json_escape("C:\\dir\\f"), "C:\\\\dir\\\\f");
  EXPECT_EQ(json_escape("\\\""), "\\\\\\\"");
}

TEST(JsonEscape, ControlCharactersBecomeUnicodeEscapes) {
  EXPECT_EQ(json_escape("a\nb"), "a\\u000ab");
  EXPECT_EQ(json_escape("\t\r"), "\\u0009\\u000d");
  EXPECT_EQ(json_escape("\x01\x1f"), "\\u0001\\u001f");
  EXPECT_EQ(json_escape(std::string("a\0b", 3)), "a\\u0000b");
  std::string out = json_escape(all_control_characters());
  EXPECT_EQ(out.size(), 31u * 6);
  for (char c : out) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << out;
}

TEST(JsonEscape, WellFormedUtf8IsCopiedAsIs) {
  for (const char* s : {"é", "données", "日本語", "🎬 shot", "\x7f", "ü/ß/€/𝄞"}) EXPECT_EQ(json_escape(s), s);
}

TEST(JsonEscape, StrayAndTruncatedBytesBecomeU00XX) {
  EXPECT_EQ(json_escape("\xff"), "\\u00ff");
  EXPECT_EQ(json_escape("a\x80z"), "a\\u0080z");
  EXPECT_EQ(json_escape("\xc3"), "\\u00c3");                       // truncated at the end
  EXPECT_EQ(json_escape("\xc3" "A"), "\\u00c3A");                  // lead byte without continuation
  EXPECT_EQ(json_escape("\xe6\x97"), "\\u00e6\\u0097");            // 3-byte sequence cut short
  EXPECT_EQ(json_escape("\xf0\x9f\x8e"), "\\u00f0\\u009f\\u008e"); // 4-byte sequence cut short
  EXPECT_EQ(json_escape("\xfe\xfe\xff"), "\\u00fe\\u00fe\\u00ff");
}

TEST(JsonEscape, OutputIsValidUtf8ForEverySingleByteInput) {
  for (int a = 0; a < 256; ++a) {
    std::string one(1, static_cast<char>(a));
    std::string out = json_escape(one);
    EXPECT_TRUE(valid_utf8(out)) << "byte " << a;
    if (a >= 0x80) {
      char expected[8];
      std::snprintf(expected, sizeof expected, "\\u%04x", a);
      EXPECT_EQ(out, expected);
    }
  }
}

TEST(JsonEscape, EscapesOverlongSurrogateAndOutOfRangeSequences) {
  // None of these is UTF-8 (Unicode table 3-7), so copying them "as is" makes the output
  // invalid UTF-8 and therefore invalid JSON; the header promises stray bytes as \u00XX.
  struct Case { const char* name; std::string bytes; };
  const Case cases[] = {
      {"overlong NUL C0 80", "\xc0\x80"},
      {"overlong '/' C1 AF", "\xc1\xaf"},
      {"overlong '/' E0 80 AF", "\xe0\x80\xaf"},
      {"overlong F0 80 80 AF", "\xf0\x80\x80\xaf"},
      {"surrogate U+D800 ED A0 80", "\xed\xa0\x80"},
      {"surrogate U+DFFF ED BF BF", "\xed\xbf\xbf"},
      {"U+110000 F4 90 80 80", "\xf4\x90\x80\x80"},
      {"F5 80 80 80", "\xf5\x80\x80\x80"},
      {"F7 BF BF BF", "\xf7\xbf\xbf\xbf"},
  };
  for (const auto& c : cases) {
    std::string out = json_escape("x" + c.bytes + "y");
    EXPECT_TRUE(valid_utf8(out)) << c.name << " copied raw into the JSON string";
  }
}

// ---------------------------------------------------------------------------------------
// TransferReport::to_json

TEST(ReportJson, PythonParserCheckRejectsBrokenJson) {
  // The oracle itself must be able to say no.
  EXPECT_TRUE(python_accepts("{\"a\":[1,2,\"x\"]}"));
  EXPECT_FALSE(python_accepts("{\"a\":1,}"));
  EXPECT_FALSE(python_accepts("{\"a\":\"\n\"}"));
  EXPECT_FALSE(python_accepts("{\"a\":\"\xc0\x80\"}"));
  EXPECT_FALSE(python_accepts("{\"a\":nan}"));
}

TEST(ReportJson, EmptyReportIsValidJson) {
  TransferReport r;
  std::string j = r.to_json();
  EXPECT_TRUE(python_accepts(j)) << j;
  auto v = python_eval(j, {"d['ok']", "d['exit_code']", "d['error']", "d['files']", "d['throughput_MBps']"});
  ASSERT_EQ(v.size(), 5u) << j;
  EXPECT_EQ(v[0], "true");
  EXPECT_EQ(v[1], "0");
  EXPECT_EQ(v[2], "\"\"");
  EXPECT_EQ(v[3], "[]");
  EXPECT_EQ(v[4], "0.0");
}

TEST(ReportJson, FieldsArePresentWithTheirValues) {
  std::string j = sample_report().to_json();
  ASSERT_TRUE(python_accepts(j)) << j;
  auto v = python_eval(j, {"sorted(d.keys())", "d['ok']", "d['exit_code']", "d['error']", "d['files_total']",
                           "d['files_sent']", "d['files_skipped']", "d['files_failed']", "d['bytes_on_disk']",
                           "d['bytes_on_wire']", "d['chunks_sent']", "d['chunks_resent']", "d['seconds']",
                           "d['throughput_MBps']", "len(d['files'])", "d['chunks_resumed']", "d['bytes_resumed']",
                           "d['reconnects']", "d['encrypted']"});
  ASSERT_EQ(v.size(), 19u) << j;
  EXPECT_EQ(v[0],
            "[\"bytes_on_disk\", \"bytes_on_wire\", \"bytes_resumed\", \"chunks_resent\", \"chunks_resumed\", "
            "\"chunks_sent\", \"encrypted\", \"error\", \"exit_code\", \"files\", \"files_failed\", \"files_sent\", "
            "\"files_skipped\", \"files_total\", \"ok\", \"reconnects\", \"seconds\", \"throughput_MBps\"]");
  EXPECT_EQ(v[1], "true");
  EXPECT_EQ(v[2], "0");
  EXPECT_EQ(v[3], "\"\"");
  EXPECT_EQ(v[4], "5");
  EXPECT_EQ(v[5], "2");
  EXPECT_EQ(v[6], "2");
  EXPECT_EQ(v[7], "1");
  EXPECT_EQ(v[8], "5000000");
  EXPECT_EQ(v[9], "5000123");
  EXPECT_EQ(v[10], "17");
  EXPECT_EQ(v[11], "3");
  EXPECT_EQ(v[12], "2.5");
  EXPECT_EQ(v[13], "2.0");  // 5,000,000 bytes in 2.5 s = 2.0 MB/s
  EXPECT_EQ(v[14], "3");
  EXPECT_EQ(v[15], "4");
  EXPECT_EQ(v[16], "16777216");
  EXPECT_EQ(v[17], "2");
  EXPECT_EQ(v[18], "true") << "a report is encrypted unless --plaintext said otherwise";
}

TEST(ReportJson, PerFileFieldsAndOptionalKeys) {
  std::string j = sample_report().to_json();
  auto v = python_eval(j, {"d['files'][0]", "sorted(d['files'][1].keys())", "d['files'][2]['error']",
                           "'xxh3_128' in d['files'][2]"});
  ASSERT_EQ(v.size(), 4u) << j;
  EXPECT_EQ(v[0],
            "{\"path\": \"a.txt\", \"type\": \"file\", \"size\": 5000000, \"action\": \"sent\", "
            "\"xxh3_128\": \"0123456789abcdef0123456789abcdef\"}");
  EXPECT_EQ(v[1], "[\"action\", \"path\", \"size\", \"type\"]");  // no empty xxh3_128 / error keys
  EXPECT_EQ(v[2], "\"refused: path escapes\"");
  EXPECT_EQ(v[3], "false");
}

TEST(ReportJson, FailedStatusGivesExitCodeAndEscapedMessage) {
  TransferReport r;
  r.status = Status(Error::kRefused, "path '../x\"y\\z' escapes\nthe root");
  std::string j = r.to_json();
  ASSERT_TRUE(python_accepts(j)) << j;
  auto v = python_eval(j, {"d['ok']", "d['exit_code']", "d['error']"});
  ASSERT_EQ(v.size(), 3u) << j;
  EXPECT_EQ(v[0], "false");
  EXPECT_EQ(v[1], "6");
  EXPECT_EQ(v[2], "\"refused: path '../x\\\"y\\\\z' escapes\\nthe root\"");
}

TEST(ReportJson, HostilePathsStayValidJsonAndDecodeBack) {
  const std::vector<std::string> paths = {
      "quote\"d \"name\".exr",
      "back\\slash\\\\double",
      "ctl/" + all_control_characters() + "/end",
      std::string("nul\0byte", 8),
      "del\x7f",
      "unicode/données/日本語/🎬 shot 010",
      "\"\\\"\\",  // alternating quotes and backslashes
  };
  TransferReport r = sample_report();
  r.files.clear();
  for (const auto& p : paths) r.files.push_back({p, "file", 1, "failed", "", "error for " + p});
  std::string j = r.to_json();
  ASSERT_TRUE(python_accepts(j)) << j;
  std::vector<std::string> exprs;
  for (size_t i = 0; i < paths.size(); ++i) {
    exprs.push_back("d['files'][" + std::to_string(i) + "]['path'].encode('utf-8').hex()");
    exprs.push_back("d['files'][" + std::to_string(i) + "]['error'].encode('utf-8').hex()");
  }
  auto v = python_eval(j, exprs);
  ASSERT_EQ(v.size(), exprs.size()) << j;
  auto hex = [](const std::string& s) {
    std::string h = "\"";
    char b[3];
    for (unsigned char c : s) {
      std::snprintf(b, sizeof b, "%02x", c);
      h += b;
    }
    return h + "\"";
  };
  for (size_t i = 0; i < paths.size(); ++i) {
    EXPECT_EQ(v[2 * i], hex(paths[i])) << "path " << i;
    EXPECT_EQ(v[2 * i + 1], hex("error for " + paths[i])) << "error " << i;
  }
}

TEST(ReportJson, InvalidUtf8PathBytesStayValidJson) {
  TransferReport r = sample_report();
  r.files.push_back({"raw/\xff\xfe\x80 name\xc3", "file", 1, "failed", "", "bad \xe6\x97"});
  std::string j = r.to_json();
  ASSERT_TRUE(python_accepts(j)) << j;
  // Stray bytes come out as the code points U+00XX.
  auto v = python_eval(j, {"d['files'][3]['path']", "d['files'][3]['error']"});
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], "\"raw/\\u00ff\\u00fe\\u0080 name\\u00c3\"");
  EXPECT_EQ(v[1], "\"bad \\u00e6\\u0097\"");
}

TEST(ReportJson, OverlongAndSurrogateUtf8PathBytesStayValidJson) {
  // Paths are raw bytes from the file system: any byte string can appear.
  TransferReport r = sample_report();
  r.files.push_back({"overlong-\xc0\x80", "file", 1, "failed", "", ""});
  r.files.push_back({"surrogate-\xed\xa0\x80", "file", 1, "failed", "", ""});
  r.files.push_back({"beyond-10ffff-\xf4\x90\x80\x80", "file", 1, "failed", "", ""});
  std::string j = r.to_json();
  EXPECT_TRUE(python_accepts(j)) << j;
}

}  // namespace
}  // namespace ferry
