// A crafted client against the real ferryd: it speaks TLS and presents a real token (so what
// is tested is what an authenticated but hostile sender can do), then uses the protocol
// encoder directly to send escaping, absolute, symlink-escaping and over-long paths and an
// oversized frame. All are refused, nothing is written outside the export, and the daemon
// keeps serving: a normal `ferry send` afterwards succeeds.
#include <gtest/gtest.h>

#include "../e2e/raw_client.h"
#include "daemon_util.h"
#include "protocol/frames.h"

namespace ferry::test {
namespace {

using namespace ferry::protocol;

class DaemonHostileClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    token_ = layout_.new_token("hostile");
    plates_ = layout_.export_path("plates");
    // A symlink inside the export that points outside it.
    ASSERT_EQ(symlink(layout_.outside().c_str(), (plates_ + "/evil").c_str()), 0);
    ferryd_ = std::make_unique<Ferryd>(layout_.config_path);
    ASSERT_TRUE(ferryd_->ready()) << ferryd_->process().stderr_text();
  }
  void TearDown() override {
    if (!ferryd_) return;
    ferryd_->process().signal(SIGTERM);
    EXPECT_EQ(ferryd_->process().wait_exit(std::chrono::seconds(30)), 0) << ferryd_->process().stderr_text();
  }
  void expect_outside_untouched() {
    std::map<std::string, TreeItem> t;
    list_tree(layout_.outside(), "", &t);
    EXPECT_TRUE(t.empty()) << "something was written outside the export";
    struct stat st {};
    for (const char* beside : {"exports/x", "x", "exports/up"})
      EXPECT_NE(lstat((layout_.dir / beside).c_str(), &st), 0) << beside << " was created outside the export";
  }
  // The daemon survived whatever came before: a real sender still gets its file through.
  void expect_daemon_still_serves() {
    TempDir src("src");
    write_text(src / "after.txt", "still serving");
    auto r = run_command(layout_.send_args(token_, {"-q", src / "after.txt", ferryd_->url("plates/after")}));
    ASSERT_EQ(r.exit_code, 0) << r.err << ferryd_->process().stderr_text();
    EXPECT_EQ(read_text(plates_ + "/after/after.txt"), "still serving");
  }

  DaemonLayout layout_;
  std::string token_, plates_;
  std::unique_ptr<Ferryd> ferryd_;
};

TEST_F(DaemonHostileClientTest, EscapingAbsoluteSymlinkAndOverlongPathsAreRejected) {
  RawClient c(ferryd_->port());
  ASSERT_TRUE(c.connected());
  std::vector<uint8_t> p;
  ASSERT_EQ(c.open_session(token_, "plates", &p), FrameType::kSessionOpened) << ferryd_->process().stderr_text();
  FileList list = escaping_file_list();
  c.send_bytes(encode(list));
  c.send_bytes(encode(FileListEnd{9}));
  auto plans = read_plans(c, 9);
  ASSERT_EQ(plans.size(), 9u) << ferryd_->process().stderr_text();
  for (uint32_t id : {0u, 1u, 2u, 3u, 4u, 5u, 7u, 8u}) {
    EXPECT_EQ(plans[id].action, PlanAction::kReject) << "file id " << id << " was not refused";
    EXPECT_FALSE(plans[id].reason.empty()) << "file id " << id;
  }
  EXPECT_EQ(plans[6].action, PlanAction::kSend);
  expect_outside_untouched();
  expect_daemon_still_serves();
}

TEST_F(DaemonHostileClientTest, EscapingDestinationsAreRefusedWithAnError) {
  for (const std::string dest : {"plates/../up", "../x", "/plates/x", "plates/a/../../../x"}) {
    RawClient c(ferryd_->port());
    std::vector<uint8_t> p;
    ASSERT_EQ(c.open_session(token_, dest, &p), FrameType::kError) << dest;
    auto e = decode_error(p);
    ASSERT_TRUE(e) << dest;
    EXPECT_EQ(e->code, static_cast<uint16_t>(Error::kRefused)) << dest << ": " << e->message;
    EXPECT_TRUE(c.closed_by_peer()) << dest;
  }
  // A destination through the symlink is a plain relative name, so the session opens, but
  // every path below it resolves through the link and is rejected (no link is followed).
  {
    RawClient c(ferryd_->port());
    std::vector<uint8_t> p;
    ASSERT_EQ(c.open_session(token_, "plates/evil/sub", &p), FrameType::kSessionOpened);
    FileList list;
    list.entries = {regular(0, "through-link.txt", 5)};
    c.send_bytes(encode(list));
    c.send_bytes(encode(FileListEnd{1}));
    auto plans = read_plans(c, 1);
    ASSERT_EQ(plans.size(), 1u);
    EXPECT_EQ(plans[0].action, PlanAction::kReject) << "a file was planned through the symlink";
  }
  expect_outside_untouched();
  expect_daemon_still_serves();
}

TEST_F(DaemonHostileClientTest, OversizedFrameEndsOnlyThatSession) {
  RawClient c(ferryd_->port());
  std::vector<uint8_t> p;
  ASSERT_EQ(c.open_session(token_, "plates/big", &p), FrameType::kSessionOpened);
  // A FILE_LIST header claiming 3 GiB of payload: refused from the header, nothing allocated.
  c.send_bytes({0x10, 0, 0, 0, 0xC0, 0, 0, 0});
  FrameType t{};
  if (c.read_frame(&t, &p)) {
    EXPECT_EQ(t, FrameType::kError);
    auto e = decode_error(p);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, static_cast<uint16_t>(Error::kProtocol));
    EXPECT_NE(e->message.find("exceeds the limit"), std::string::npos) << e->message;
  }
  EXPECT_TRUE(c.closed_by_peer());
  // An over-long AUTH token is refused before any lookup.
  RawClient big(ferryd_->port());
  EXPECT_EQ(big.handshake(std::string(kMaxTokenLength + 1, 'a'), &p), FrameType::kError);
  expect_outside_untouched();
  expect_daemon_still_serves();
  std::string m = ferryd_->metrics();
  EXPECT_GE(metric_value(m, "ferryd_errors_total"), 1) << m;
}

}  // namespace
}  // namespace ferry::test
