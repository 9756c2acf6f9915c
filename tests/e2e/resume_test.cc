// Resume over real loopback connections: a transfer broken by a dropped link (the
// test-only fault in SendOptions) picks up where it stopped, and nothing the journal claims
// is trusted blindly.
#include <sys/stat.h>

#include "e2e_util.h"

namespace ferry::test {
namespace {

constexpr uint32_t kChunk = 1u << 20;

class ResumeTest : public ::testing::Test {
 protected:
  TempDir src_{"src"};
  TempDir dst_{"dst"};
  void SetUp() override { write_random_file(src_ / "plate.bin", 24ull << 20, 77); }

  SendOptions options() {
    SendOptions o = quiet_options();
    o.chunk_size = kChunk;
    o.streams = 2;
    o.memory = 8ull << 20;
    o.retry_timeout = std::chrono::milliseconds(0);
    return o;
  }
  // Run 1: the link dies after `after` chunks; partial state stays on the receiver.
  void interrupted_run(ReceiverThread& rx, uint64_t after) {
    SendOptions o = options();
    o.fault_drop_link_after_chunks = after;
    TransferReport r = send_files({src_ / "plate.bin"}, rx.url(), o);
    ASSERT_EQ(r.status.code(), Error::kNetwork) << r.status.to_string();
    ASSERT_TRUE(wait_until_journals_released(dst_.path()));
    struct stat st {};
    ASSERT_NE(lstat((dst_ / "plate.bin").c_str(), &st), 0) << "a partial file must not have its final name";
    ASSERT_EQ(leftover_temp_files(dst_.path()).size(), 1u) << "the partial file is kept for resume";
  }
  std::string temp_file() { return dst_ / leftover_temp_files(dst_.path()).at(0); }
};

TEST_F(ResumeTest, InterruptedTransferResumesSendingOnlyTheMissingChunks) {
  ReceiverThread rx(dst_.path());
  interrupted_run(rx, 10);
  TransferReport r = send_files({src_ / "plate.bin"}, rx.url(), options());
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(hash_file(dst_ / "plate.bin"), hash_file(src_ / "plate.bin"));
  // Of the 10 chunks sent before the drop, all but what was still in flight were kept.
  EXPECT_GE(r.chunks_resumed, 10u - 2 * 2);
  EXPECT_EQ(r.chunks_sent + r.chunks_resumed, 24u);
  EXPECT_TRUE(leftover_temp_files(dst_.path()).empty());
  struct stat st {};
  EXPECT_NE(stat((dst_ / ".ferry/journal").c_str(), &st) == 0 && st.st_nlink > 2, true)
      << "the journal of a completed transfer is deleted";
}

TEST_F(ResumeTest, DroppedLinksAreRetriedWithinOneRun) {
  ReceiverThread rx(dst_.path());
  SendOptions o = options();
  o.fault_drop_link_after_chunks = 6;  // every connection dies after 6 chunks
  o.retry_timeout = std::chrono::milliseconds(60'000);
  TransferReport r = send_files({src_ / "plate.bin"}, rx.url(), o);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  // Each connection carries its 6 chunks plus what was already in flight when the drop
  // took effect (up to 2 per stream, 2 streams): at most 10 of the 24, so at least 3
  // connections, 2 reconnects. (How many were in flight depends on timing; with TLS the
  // writes complete in different steps, so "3 reconnects" was not guaranteed.)
  EXPECT_GE(r.reconnects, 2u);
  EXPECT_EQ(hash_file(dst_ / "plate.bin"), hash_file(src_ / "plate.bin"));
  EXPECT_EQ(r.files[0].action, "sent");
  // Re-sent after all the drops: at most the chunks in flight at each drop.
  EXPECT_LE(r.chunks_sent, 24u + r.reconnects * 2 * 2);
}

TEST_F(ResumeTest, JournalThatDisagreesWithTheFileOnDiskIsDiscarded) {
  ReceiverThread rx(dst_.path());
  interrupted_run(rx, 10);
  // Someone replaced the partial file (same name, another inode): never trust its contents.
  std::string t = temp_file();
  ASSERT_EQ(std::system(("cp '" + t + "' '" + t + ".copy' && mv '" + t + ".copy' '" + t + "'").c_str()), 0);
  TransferReport r = send_files({src_ / "plate.bin"}, rx.url(), options());
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.chunks_resumed, 0u);
  EXPECT_EQ(hash_file(dst_ / "plate.bin"), hash_file(src_ / "plate.bin"));
}

TEST_F(ResumeTest, FullResumeRereadsKeptChunksAndCatchesOneThatRottedOnDisk) {
  ReceiverThread rx(dst_.path());
  interrupted_run(rx, 10);
  {
    int fd = ::open(temp_file().c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "X", 1, 3 * kChunk + 5), 1);  // chunk 3: not a sparse sample
    ::close(fd);
  }
  SendOptions o = options();
  o.resume = "full";
  TransferReport r = send_files({src_ / "plate.bin"}, rx.url(), o);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.chunks_resumed, 0u) << "the damaged partial file is discarded, not offered";
  EXPECT_EQ(hash_file(dst_ / "plate.bin"), hash_file(src_ / "plate.bin"));
}

TEST_F(ResumeTest, AttrsResumeTrustsTheJournalButTheWholeFileCheckStillRefusesARottedChunk) {
  ReceiverThread rx(dst_.path());
  interrupted_run(rx, 10);
  {
    int fd = ::open(temp_file().c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "X", 1, 3 * kChunk + 5), 1);
    ::close(fd);
  }
  SendOptions o = options();
  o.resume = "attrs";
  TransferReport second = send_files({src_ / "plate.bin"}, rx.url(), o);
  EXPECT_EQ(second.status.code(), Error::kPartial) << second.status.to_string();
  EXPECT_NE(second.files[0].error.find("checksum mismatch"), std::string::npos) << second.files[0].error;
  struct stat st {};
  EXPECT_NE(lstat((dst_ / "plate.bin").c_str(), &st), 0) << "a wrong file never gets its final name";
  // The failed file's partial state is discarded, so the next run sends it whole.
  TransferReport third = send_files({src_ / "plate.bin"}, rx.url(), o);
  ASSERT_TRUE(third.status.is_ok()) << third.status.to_string();
  EXPECT_EQ(third.chunks_resumed, 0u);
  EXPECT_EQ(hash_file(dst_ / "plate.bin"), hash_file(src_ / "plate.bin"));
}

TEST_F(ResumeTest, SourceChangedSinceTheInterruptedRunIsSentWhole) {
  ReceiverThread rx(dst_.path());
  interrupted_run(rx, 10);
  write_random_file(src_ / "plate.bin", 24ull << 20, 78);  // new content, new mtime
  TransferReport r = send_files({src_ / "plate.bin"}, rx.url(), options());
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.chunks_resumed, 0u);
  EXPECT_EQ(r.chunks_sent, 24u);
  EXPECT_EQ(hash_file(dst_ / "plate.bin"), hash_file(src_ / "plate.bin"));
}

TEST_F(ResumeTest, ResumeOffDiscardsThePartialFileAndSendsEverything) {
  ReceiverThread rx(dst_.path());
  interrupted_run(rx, 10);
  SendOptions o = options();
  o.resume = "off";
  TransferReport r = send_files({src_ / "plate.bin"}, rx.url(), o);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.chunks_resumed, 0u);
  EXPECT_EQ(r.chunks_sent, 24u);
  EXPECT_TRUE(leftover_temp_files(dst_.path()).empty());
}

}  // namespace
}  // namespace ferry::test
