// A crafted client speaking the protocol through the encoder directly (no ferry sender), to
// send what a well-behaved sender never would: escaping paths, oversized frames, chunks for
// files that were never planned. The receiver must refuse, write nothing outside its root,
// and keep serving other sessions. The client runs TLS and presents the receiver's token, so
// what is tested is what an authenticated but hostile sender can do.
#include "e2e_util.h"
#include "raw_client.h"
#include "protocol/frames.h"

namespace ferry::test {
namespace {

using namespace ferry::protocol;

class HostilePeerTest : public ::testing::Test {
 protected:
  TempDir base_{"hostile"};
  std::string root_ = base_ / "root";
  std::string outside_ = base_ / "outside";
  void SetUp() override {
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(outside_.c_str(), 0755), 0);
  }
  void expect_outside_untouched() {
    std::map<std::string, TreeItem> t;
    list_tree(outside_, "", &t);
    EXPECT_TRUE(t.empty()) << "something was written outside the root";
    struct stat st {};
    EXPECT_NE(lstat((base_ / "x").c_str(), &st), 0) << "'../x' was created next to the root";
  }
  // A normal transfer still works: the receiver survived whatever came before.
  void expect_receiver_still_serves(ReceiverThread& rx) {
    TempDir src("src");
    write_text(src / "after.txt", "still serving");
    TransferReport r = send_files({src / "after.txt"}, rx.url(), quiet_options());
    ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
    EXPECT_EQ(read_text(root_ + "/after.txt"), "still serving");
  }
};

TEST_F(HostilePeerTest, EscapingAndAbsolutePathsAreRejectedAndNothingIsWrittenOutsideTheRoot) {
  ASSERT_EQ(symlink(outside_.c_str(), (root_ + "/evil").c_str()), 0);
  ReceiverThread rx(root_);
  RawClient c(rx.url().port);
  ASSERT_TRUE(c.connected());
  std::vector<uint8_t> p;
  ASSERT_EQ(c.open_session(rx.token(), "", &p), FrameType::kSessionOpened);
  FileList list = escaping_file_list();
  c.send_bytes(encode(list));
  c.send_bytes(encode(FileListEnd{9}));
  auto plans = read_plans(c, 9);
  ASSERT_EQ(plans.size(), 9u);
  for (uint32_t id : {0u, 1u, 2u, 3u, 4u, 5u, 7u, 8u})
    EXPECT_EQ(plans[id].action, PlanAction::kReject) << "file id " << id << " was not refused";
  EXPECT_EQ(plans[6].action, PlanAction::kSend);
  EXPECT_FALSE(plans[0].reason.empty());
  expect_outside_untouched();
  expect_receiver_still_serves(rx);
}

TEST_F(HostilePeerTest, DestinationPathThatEscapesIsRefusedWithAnError) {
  ReceiverThread rx(root_);
  RawClient c(rx.url().port);
  std::vector<uint8_t> p;
  ASSERT_EQ(c.open_session(rx.token(), "../up", &p), FrameType::kError);
  auto e = decode_error(p);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, static_cast<uint16_t>(Error::kRefused));
  expect_outside_untouched();
  expect_receiver_still_serves(rx);
}

TEST_F(HostilePeerTest, OversizedControlFrameEndsTheSessionWithoutAllocating) {
  ReceiverThread rx(root_);
  RawClient c(rx.url().port);
  std::vector<uint8_t> p;
  ASSERT_EQ(c.open_session(rx.token(), "", &p), FrameType::kSessionOpened);
  // A FILE_LIST header claiming 3 GiB of payload.
  c.send_bytes({0x10, 0, 0, 0, 0xC0, 0, 0, 0});
  FrameType t{};
  bool got = c.read_frame(&t, &p);
  if (got) {
    EXPECT_EQ(t, FrameType::kError);
    auto e = decode_error(p);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, static_cast<uint16_t>(Error::kProtocol));
    EXPECT_NE(e->message.find("exceeds the limit"), std::string::npos) << e->message;
  }
  EXPECT_TRUE(c.closed_by_peer());
  expect_receiver_still_serves(rx);
}

TEST_F(HostilePeerTest, GarbageInsteadOfHelloIsDroppedAndTheReceiverKeepsServing) {
  ReceiverThread rx(root_);
  {
    RawClient c(rx.url().port);  // garbage where the TLS handshake belongs
    c.send_bytes(std::vector<uint8_t>(64, 0xEE));
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    RawClient c(rx.url().port);  // garbage where HELLO belongs, inside TLS
    ASSERT_TRUE(c.start_tls());
    c.send_bytes(std::vector<uint8_t>(64, 0xEE));
    EXPECT_TRUE(c.closed_by_peer());
  }
  expect_receiver_still_serves(rx);
}

TEST_F(HostilePeerTest, SilentConnectionIsClosedAfterTheHandshakeTimeout) {
  ReceiverThread rx(root_, 256ull << 20, std::chrono::milliseconds(300));
  RawClient silent(rx.url().port);
  ASSERT_TRUE(silent.connected());
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.closed_by_peer());  // blocks until the receiver gives up (recv timeout 10 s)
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // Half a handshake is no better: HELLO, then nothing.
  RawClient half(rx.url().port);
  ASSERT_TRUE(half.start_tls());
  half.send_bytes(encode(Hello{}));
  FrameType t{};
  std::vector<uint8_t> p;
  ASSERT_TRUE(half.read_frame(&t, &p));
  EXPECT_EQ(t, FrameType::kWelcome);
  EXPECT_TRUE(half.closed_by_peer());
  expect_receiver_still_serves(rx);
}

TEST_F(HostilePeerTest, UnsupportedVersionRangeIsRefusedWithTheSupportedRange) {
  ReceiverThread rx(root_);
  RawClient c(rx.url().port);
  ASSERT_TRUE(c.start_tls());
  Hello h;
  h.min_version = 7;
  h.max_version = 9;
  c.send_bytes(encode(h));
  FrameType t{};
  std::vector<uint8_t> p;
  ASSERT_TRUE(c.read_frame(&t, &p));
  ASSERT_EQ(t, FrameType::kError);
  auto e = decode_error(p);
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("unsupported protocol version"), std::string::npos) << e->message;
}

TEST_F(HostilePeerTest, ChunkForAFileThatWasNeverPlannedEndsTheSessionAndWritesNothing) {
  ReceiverThread rx(root_);
  RawClient control(rx.url().port);
  std::vector<uint8_t> p;
  ASSERT_EQ(control.open_session(rx.token(), "", &p), FrameType::kSessionOpened);
  auto opened = decode_session_opened(p);
  ASSERT_TRUE(opened);
  FileList list;
  list.entries = {regular(0, "planned.bin", 10)};
  control.send_bytes(encode(list));
  control.send_bytes(encode(FileListEnd{1}));
  ASSERT_EQ(read_plans(control, 1).size(), 1u);

  RawClient data(rx.url().port);
  ASSERT_EQ(data.handshake(rx.token(), &p), FrameType::kAuthOk);
  FrameType t{};
  data.send_bytes(encode(JoinStream{opened->session_id, 0}));
  ASSERT_TRUE(data.read_frame(&t, &p));
  ASSERT_EQ(t, FrameType::kStreamJoined);
  ChunkHeader h{42, 0, 10, 0, 0};  // file id 42 was never listed
  uint8_t prefix[kChunkPrefixSize];
  encode_chunk_prefix(h, 10, prefix);
  std::vector<uint8_t> frame(prefix, prefix + kChunkPrefixSize);
  frame.resize(frame.size() + 10, 'A');
  data.send_bytes(frame);
  EXPECT_TRUE(data.closed_by_peer());
  EXPECT_TRUE(control.read_frame(&t, &p) ? t == FrameType::kError : true);
  struct stat st {};
  EXPECT_NE(lstat((root_ + "/planned.bin").c_str(), &st), 0);
  EXPECT_TRUE(leftover_temp_files(root_).empty());
  expect_receiver_still_serves(rx);
}

}  // namespace
}  // namespace ferry::test
