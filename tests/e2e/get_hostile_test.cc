// Crafted clients against the server side of GET_SESSION, speaking the protocol encoder
// directly: a data stream with another token cannot join someone else's download, a get
// whose streams never join is closed with a clear ERROR, and the server keeps serving.
#include "e2e_util.h"
#include "raw_client.h"

namespace ferry::test {
namespace {

using namespace protocol;

class GetHostileTest : public ::testing::Test {
 protected:
  TempDir exports_{"get-hostile"};
  std::unique_ptr<ReceiverThread> rx_;

  void start(std::chrono::milliseconds handshake_timeout = std::chrono::milliseconds(30'000)) {
    ASSERT_EQ(mkdir((exports_ / "plates").c_str(), 0755), 0);
    write_text(exports_ / "plates/a.txt", "alpha");
    ReceiveOptions o;
    o.exports = {{"plates", exports_ / "plates", nullptr}};
    o.handshake_timeout = handshake_timeout;
    // Two tokens with the same read access: a JOIN_STREAM is still bound to its own token.
    o.verify_token = [](std::string_view token) -> Result<std::vector<ExportAccess>> {
      if (token == "alice" || token == "mallory") return std::vector<ExportAccess>{{"plates", true, false}};
      return Status(Error::kRefused, "unknown token");
    };
    rx_ = std::make_unique<ReceiverThread>(o);
  }
  uint16_t port() const { return rx_->url().port; }

  // GET_SESSION for plates/a.txt with one data stream; returns the session id.
  Id128 open_get(RawClient& c, const std::string& token) {
    std::vector<uint8_t> p;
    EXPECT_EQ(c.handshake(token, &p), FrameType::kAuthOk);
    GetSession g;
    g.data_streams = 1;
    g.paths = {{false, "plates/a.txt"}};
    c.send_bytes(encode(g));
    FrameType t{};
    EXPECT_TRUE(c.read_frame(&t, &p));
    EXPECT_EQ(t, FrameType::kSessionOpened);
    auto opened = decode_session_opened(p);
    return opened ? opened->session_id : Id128{};
  }
};

TEST_F(GetHostileTest, ADataStreamWithAnotherTokenCannotJoinSomeoneElsesDownload) {
  start();
  RawClient alice(port());
  Id128 id = open_get(alice, "alice");
  RawClient mallory(port());
  std::vector<uint8_t> p;
  ASSERT_EQ(mallory.handshake("mallory", &p), FrameType::kAuthOk);
  mallory.send_bytes(encode(JoinStream{id, 0}));
  FrameType t{};
  ASSERT_TRUE(mallory.read_frame(&t, &p));
  ASSERT_EQ(t, FrameType::kError);
  auto e = decode_error(p);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message, "no such session");
  // The owner's stream still joins, and the transfer starts on the control connection.
  RawClient stream(port());
  ASSERT_EQ(stream.handshake("alice", &p), FrameType::kAuthOk);
  stream.send_bytes(encode(JoinStream{id, 0}));
  ASSERT_TRUE(stream.read_frame(&t, &p));
  EXPECT_EQ(t, FrameType::kStreamJoined);
  ASSERT_TRUE(alice.read_frame(&t, &p));
  EXPECT_EQ(t, FrameType::kFileList);
  auto list = decode_file_list(p);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->entries.size(), 1u);
  EXPECT_EQ(list->entries[0].entry.path, "a.txt");
}

TEST_F(GetHostileTest, AGetWhoseStreamsNeverJoinIsClosedWithAClearErrorAndTheServerServesOn) {
  start(std::chrono::milliseconds(300));
  RawClient c(port());
  open_get(c, "alice");
  FrameType t{};
  std::vector<uint8_t> p;
  ASSERT_TRUE(c.read_frame(&t, &p));
  ASSERT_EQ(t, FrameType::kError);
  auto e = decode_error(p);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, static_cast<uint16_t>(Error::kNetwork));
  EXPECT_NE(e->message.find("only 0 of 1 data streams joined"), std::string::npos) << e->message;
  RawClient again(port());
  open_get(again, "alice");
}

TEST_F(GetHostileTest, OversizedAndMalformedRequestsAreProtocolErrors) {
  start();
  RawClient c(port());
  std::vector<uint8_t> p;
  ASSERT_EQ(c.handshake("alice", &p), FrameType::kAuthOk);
  GetSession g;
  g.data_streams = 1;
  g.paths.assign(kMaxGetPaths + 1, GetPath{false, "plates/a.txt"});
  c.send_bytes(encode(g));
  FrameType t{};
  ASSERT_TRUE(c.read_frame(&t, &p));
  ASSERT_EQ(t, FrameType::kError);
  auto e = decode_error(p);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, static_cast<uint16_t>(Error::kProtocol));
  EXPECT_NE(e->message.find("path count out of range"), std::string::npos) << e->message;
  RawClient again(port());
  open_get(again, "alice");
}

}  // namespace
}  // namespace ferry::test
