// The key=value log format the daemon uses: one line per event, values quoted and escaped
// so that a message can never split a line or forge a field.
#include "core/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace ferry::log {
namespace {

// Captures what the logger writes to fd 2 (a real pipe in place of stderr).
class StderrCapture {
 public:
  StderrCapture() {
    if (pipe(fds_) != 0) return;
    saved_ = dup(STDERR_FILENO);
    dup2(fds_[1], STDERR_FILENO);
  }
  std::string finish() {
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    close(fds_[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds_[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    close(fds_[0]);
    return out;
  }

 private:
  int fds_[2] = {-1, -1};
  int saved_ = -1;
};

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    set_program("ferryd");
    set_level(Level::kInfo);
  }
  void TearDown() override {
    set_format(Format::kPlain);
    set_program("ferry");
    set_level(Level::kWarning);
  }
};

TEST_F(LogTest, KeyValueFormatQuotesAndEscapes) {
  set_format(Format::kKeyValue);
  StderrCapture cap;
  event(Level::kInfo, "listening", {{"addr", "0.0.0.0:7400"}, {"empty", ""}});
  event(Level::kWarning, "say \"hi\"\nlevel=error forged", {{"path", "a b\\c"}, {"x", "k=v"}});
  debug("not shown at info level");
  error("plain call");
  EXPECT_EQ(cap.finish(),
            "level=info prog=ferryd msg=listening addr=0.0.0.0:7400 empty=\"\"\n"
            "level=warning prog=ferryd msg=\"say \\\"hi\\\"\\nlevel=error forged\" path=\"a b\\\\c\" x=\"k=v\"\n"
            "level=error prog=ferryd msg=\"plain call\"\n");
}

TEST_F(LogTest, PlainFormatIsUnchangedAndAppendsFields) {
  set_format(Format::kPlain);
  StderrCapture cap;
  warning("skipping fifo 'a/b'");
  event(Level::kInfo, "listening", {{"port", "7400"}});
  EXPECT_EQ(cap.finish(), "ferryd: warning: skipping fifo 'a/b'\nferryd: listening port=7400\n");
}

}  // namespace
}  // namespace ferry::log
