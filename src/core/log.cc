#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <mutex>

namespace ferry::log {
namespace {
std::atomic<Level> g_level{Level::kWarning};
std::atomic<Format> g_format{Format::kPlain};
std::mutex g_name_mu;
std::string g_program = "ferry";

const char* level_name(Level at) {
  switch (at) {
    case Level::kError: return "error";
    case Level::kWarning: return "warning";
    case Level::kInfo: return "info";
    case Level::kDebug: return "debug";
    case Level::kQuiet: break;
  }
  return "quiet";
}

// Appends a key=value value, quoted when it would otherwise break the one-line,
// space-separated form.
void append_value(std::string& line, std::string_view v) {
  bool plain = !v.empty();
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) plain = false;
  if (plain) {
    line += v;
    return;
  }
  line += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') {
      line += '\\';
      line += c;
    } else if (c == '\n') {
      line += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      line += ' ';
    } else {
      line += c;
    }
  }
  line += '"';
}

void emit(Level at, const char* tag, const std::string& message, std::initializer_list<Field> fields = {}) {
  if (static_cast<int>(g_level.load()) < static_cast<int>(at)) return;
  std::string program;
  {
    std::lock_guard lock(g_name_mu);
    program = g_program;
  }
  std::string line;
  if (g_format.load() == Format::kKeyValue) {
    line = "level=";
    line += level_name(at);
    line += " prog=";
    line += program;
    line += " msg=";
    append_value(line, message);
  } else {
    line = program + ": " + tag + message;
  }
  for (const auto& [k, v] : fields) {
    line += ' ';
    line += k;
    line += '=';
    append_value(line, v);
  }
  line += '\n';
  // One write so lines from several threads never interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

const char* tag_of(Level at) {
  switch (at) {
    case Level::kError: return "error: ";
    case Level::kWarning: return "warning: ";
    case Level::kDebug: return "debug: ";
    default: return "";
  }
}
}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level.load(); }
void set_program(const std::string& name) {
  std::lock_guard lock(g_name_mu);
  g_program = name;
}
void set_format(Format format) { g_format = format; }
void error(const std::string& m) { emit(Level::kError, tag_of(Level::kError), m); }
void warning(const std::string& m) { emit(Level::kWarning, tag_of(Level::kWarning), m); }
void info(const std::string& m) { emit(Level::kInfo, tag_of(Level::kInfo), m); }
void debug(const std::string& m) { emit(Level::kDebug, tag_of(Level::kDebug), m); }
void event(Level at, const std::string& m, std::initializer_list<Field> fields) { emit(at, tag_of(at), m, fields); }

}  // namespace ferry::log
