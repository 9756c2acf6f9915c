#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <mutex>

namespace ferry::log {
namespace {
std::atomic<Level> g_level{Level::kWarning};
std::mutex g_name_mu;
std::string g_program = "ferry";

void emit(Level at, const char* tag, const std::string& message) {
  if (static_cast<int>(g_level.load()) < static_cast<int>(at)) return;
  std::string line;
  {
    std::lock_guard lock(g_name_mu);
    line = g_program;
  }
  line += ": ";
  line += tag;
  line += message;
  line += '\n';
  // One write so lines from several threads never interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}
}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level.load(); }
void set_program(const std::string& name) {
  std::lock_guard lock(g_name_mu);
  g_program = name;
}
void error(const std::string& m) { emit(Level::kError, "error: ", m); }
void warning(const std::string& m) { emit(Level::kWarning, "warning: ", m); }
void info(const std::string& m) { emit(Level::kInfo, "", m); }
void debug(const std::string& m) { emit(Level::kDebug, "debug: ", m); }

}  // namespace ferry::log
