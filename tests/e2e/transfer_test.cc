// End-to-end transfers over real loopback sockets with real files.
#include <sys/stat.h>
#include <sys/time.h>

#include "e2e_util.h"

namespace ferry::test {
namespace {

class TransferTest : public ::testing::Test {
 protected:
  TempDir src_{"src"};
  TempDir dst_{"dst"};
};

TEST_F(TransferTest, LargeFileArrivesByteIdenticalOverFourStreams) {
  const uint64_t kSize = 256ull << 20;
  write_random_file(src_ / "plate.bin", kSize, 42);
  ReceiverThread rx(dst_.path());
  SendOptions o = quiet_options();
  o.streams = 4;
  TransferReport r = send_files({src_ / "plate.bin"}, rx.url("in"), o);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.files_sent, 1u);
  EXPECT_EQ(r.bytes_on_disk, kSize);
  EXPECT_EQ(r.chunks_sent, kSize / o.chunk_size);
  EXPECT_EQ(hash_file(dst_ / "in/plate.bin"), hash_file(src_ / "plate.bin"));
  EXPECT_EQ(r.files[0].xxh3_128, hash_file(src_ / "plate.bin").hex());
  EXPECT_TRUE(leftover_temp_files(dst_.path()).empty());
}

TEST_F(TransferTest, TwoThousandSmallFilesInATree) {
  ASSERT_EQ(mkdir((src_ / "shot").c_str(), 0755), 0);
  for (int d = 0; d < 20; ++d) {
    std::string dir = src_ / ("shot/d" + std::to_string(d));
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
    for (int f = 0; f < 100; ++f)
      write_random_file(dir + "/frame." + std::to_string(1000 + f) + ".exr", 1000 + 37 * f, d * 1000 + f);
  }
  ReceiverThread rx(dst_.path());
  TransferReport r = send_files({src_ / "shot"}, rx.url(), quiet_options());
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.files_sent, 2000u);
  expect_same_tree(src_.path(), dst_.path());
}

TEST_F(TransferTest, EmptyFilesDirsSymlinksUnicodeAndModesArePreserved) {
  std::string t = src_ / "t";
  ASSERT_EQ(mkdir(t.c_str(), 0750), 0);
  ASSERT_EQ(mkdir((t + "/empty dir").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((t + "/nested").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((t + "/nested/deeper").c_str(), 0755), 0);
  write_text(t + "/zero", "");
  write_text(t + "/séquence ✓ 001.exr", "unicode");
  write_text(t + "/$(rm -rf x); 'q' \"d\" *.txt", "metachars");
  write_text(t + "/nested/deeper/script.sh", "#!/bin/sh\necho hi\n");
  ASSERT_EQ(chmod((t + "/nested/deeper/script.sh").c_str(), 0751), 0);
  ASSERT_EQ(symlink("nested/deeper/script.sh", (t + "/link to script").c_str()), 0);
  ASSERT_EQ(symlink("/nonexistent/target", (t + "/dangling").c_str()), 0);
  // A fixed, old mtime with nanoseconds, so preservation is really checked.
  struct timespec ts[2] = {{0, UTIME_OMIT}, {1'500'000'000, 123456789}};
  ASSERT_EQ(utimensat(AT_FDCWD, (t + "/zero").c_str(), ts, 0), 0);
  ASSERT_EQ(utimensat(AT_FDCWD, (t + "/nested/deeper").c_str(), ts, 0), 0);
  ASSERT_EQ(mkfifo((t + "/a fifo").c_str(), 0644), 0);

  ReceiverThread rx(dst_.path());
  TransferReport r = send_files({t + "/"}, rx.url("copy"), quiet_options());
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  ASSERT_EQ(unlink((t + "/a fifo").c_str()), 0);  // skipped with a warning, by design
  expect_same_tree(t, dst_ / "copy");
  struct stat st {};
  ASSERT_EQ(lstat((dst_ / "copy/link to script").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

// On loopback the link is never the bottleneck, so auto compresses only its 1-in-128 samples
// (the governor's choices are unit-tested in compression_governor_test); an explicit level
// always compresses.
TEST_F(TransferTest, CompressionShrinksTheWireForCompressibleDataAndNoneSendsItRaw) {
  const uint64_t kSize = 24ull << 20;
  write_compressible_file(src_ / "cache.txt", kSize);
  ReceiverThread rx(dst_.path());
  SendOptions o = quiet_options();
  o.compress = "auto";
  TransferReport a = send_files({src_ / "cache.txt"}, rx.url("auto"), o);
  ASSERT_TRUE(a.status.is_ok()) << a.status.to_string();
  o.compress = "none";
  TransferReport n = send_files({src_ / "cache.txt"}, rx.url("none"), o);
  ASSERT_TRUE(n.status.is_ok()) << n.status.to_string();
  o.compress = "1";
  TransferReport l1 = send_files({src_ / "cache.txt"}, rx.url("level1"), o);
  ASSERT_TRUE(l1.status.is_ok()) << l1.status.to_string();
  o.compress = "9";
  TransferReport l = send_files({src_ / "cache.txt"}, rx.url("level9"), o);
  ASSERT_TRUE(l.status.is_ok()) << l.status.to_string();

  EXPECT_LT(a.bytes_on_wire, kSize) << "auto compresses at least its sample chunks";
  EXPECT_GE(n.bytes_on_wire, kSize);
  EXPECT_LT(l1.bytes_on_wire, kSize / 2) << "level 1 compresses every chunk of text-like cache data";
  EXPECT_LT(l.bytes_on_wire, l1.bytes_on_wire);
  EXPECT_EQ(hash_file(dst_ / "level1/cache.txt"), hash_file(src_ / "cache.txt"));
  Hash128 want = hash_file(src_ / "cache.txt");
  EXPECT_EQ(hash_file(dst_ / "auto/cache.txt"), want);
  EXPECT_EQ(hash_file(dst_ / "none/cache.txt"), want);
  EXPECT_EQ(hash_file(dst_ / "level9/cache.txt"), want);
}

TEST_F(TransferTest, IncompressibleDataIsSentRawInAutoMode) {
  const uint64_t kSize = 16ull << 20;
  write_random_file(src_ / "noise.exr", kSize, 7);
  ReceiverThread rx(dst_.path());
  TransferReport r = send_files({src_ / "noise.exr"}, rx.url(), quiet_options());
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  // Raw payload plus 40 bytes of framing per chunk and the streams' handshakes (HELLO 16,
  // AUTH 10 + token, JOIN_STREAM 26 bytes each): nothing is wasted on failed compression.
  // (bytes_on_wire counts frames; TLS records add their own overhead below that.)
  EXPECT_EQ(r.bytes_on_wire, kSize + r.chunks_sent * 40 + 4 * (42 + 10 + rx.token().size()));
}

TEST_F(TransferTest, ChunkCorruptedInFlightIsDetectedResentAndTheFileIsIdentical) {
  const uint64_t kSize = 40ull << 20;
  write_random_file(src_ / "a.bin", kSize, 3);
  write_compressible_file(src_ / "b.txt", 9ull << 20);
  ReceiverThread rx(dst_.path());
  SendOptions o = quiet_options();
  o.fault_corrupt_chunks = 4;  // TEST-ONLY FAULT: see SendOptions
  TransferReport r = send_files({src_ / "a.bin", src_ / "b.txt"}, rx.url(), o);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.chunks_resent, 4u);
  EXPECT_EQ(hash_file(dst_ / "a.bin"), hash_file(src_ / "a.bin"));
  EXPECT_EQ(hash_file(dst_ / "b.txt"), hash_file(src_ / "b.txt"));
}

TEST_F(TransferTest, OverwriteNeverLeavesExistingFilesUntouched) {
  write_text(src_ / "a.txt", "new contents");
  write_text(src_ / "b.txt", "brand new");
  write_text(dst_ / "a.txt", "old");
  ReceiverThread rx(dst_.path());
  SendOptions o = quiet_options();
  o.overwrite = Overwrite::kNever;
  TransferReport r = send_files({src_ / "a.txt", src_ / "b.txt"}, rx.url(), o);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(read_text(dst_ / "a.txt"), "old");
  EXPECT_EQ(read_text(dst_ / "b.txt"), "brand new");
  EXPECT_EQ(r.files_skipped, 1u);
  EXPECT_EQ(r.files_sent, 1u);
}

TEST_F(TransferTest, OverwriteDiffSkipsUnchangedFilesAndSendsChangedOnes) {
  write_text(src_ / "same.txt", "same");
  write_text(src_ / "changed.txt", "version 1");
  ReceiverThread rx(dst_.path());
  TransferReport first = send_files({src_ / "same.txt", src_ / "changed.txt"}, rx.url(), quiet_options());
  ASSERT_TRUE(first.status.is_ok()) << first.status.to_string();
  EXPECT_EQ(first.files_sent, 2u);
  write_text(src_ / "changed.txt", "version 2!");
  TransferReport second = send_files({src_ / "same.txt", src_ / "changed.txt"}, rx.url(), quiet_options());
  ASSERT_TRUE(second.status.is_ok()) << second.status.to_string();
  EXPECT_EQ(second.files_skipped, 1u);
  EXPECT_EQ(second.files_sent, 1u);
  EXPECT_EQ(read_text(dst_ / "changed.txt"), "version 2!");
}

TEST_F(TransferTest, OverwriteAlwaysReplacesEvenIdenticalFiles) {
  write_text(src_ / "a.txt", "x");
  ReceiverThread rx(dst_.path());
  SendOptions o = quiet_options();
  o.overwrite = Overwrite::kAlways;
  ASSERT_TRUE(send_files({src_ / "a.txt"}, rx.url(), o).status.is_ok());
  TransferReport again = send_files({src_ / "a.txt"}, rx.url(), o);
  ASSERT_TRUE(again.status.is_ok());
  EXPECT_EQ(again.files_sent, 1u);
}

TEST_F(TransferTest, SmallMemoryBudgetStillCompletesALargeFile) {
  const uint64_t kSize = 64ull << 20;
  write_random_file(src_ / "big.bin", kSize, 11);
  ReceiverThread rx(dst_.path(), 8ull << 20);
  SendOptions o = quiet_options();
  o.chunk_size = 1u << 20;
  o.memory = 4u << 20;
  o.streams = 8;
  TransferReport r = send_files({src_ / "big.bin"}, rx.url(), o);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(hash_file(dst_ / "big.bin"), hash_file(src_ / "big.bin"));
}

TEST_F(TransferTest, ADirectoryInTheWayFailsThatFileOnlyAsAPartialFailure) {
  write_text(src_ / "ok.txt", "fine");
  write_text(src_ / "clash", "a file");
  ASSERT_EQ(mkdir((dst_ / "clash").c_str(), 0755), 0);
  ReceiverThread rx(dst_.path());
  TransferReport r = send_files({src_ / "ok.txt", src_ / "clash"}, rx.url(), quiet_options());
  EXPECT_EQ(r.status.code(), Error::kPartial) << r.status.to_string();
  EXPECT_EQ(r.files_failed, 1u);
  EXPECT_EQ(read_text(dst_ / "ok.txt"), "fine");
  struct stat st {};
  ASSERT_EQ(lstat((dst_ / "clash").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(TransferTest, ConnectionRefusedIsANetworkErrorNamingTheReceiver) {
  write_text(src_ / "a.txt", "x");
  FerryUrl url;
  url.host = "127.0.0.1";
  url.port = 1;  // nothing listens on port 1
  TransferReport r = send_files({src_ / "a.txt"}, url, quiet_options());
  EXPECT_EQ(r.status.code(), Error::kNetwork);
  EXPECT_NE(r.status.message().find("127.0.0.1:1"), std::string::npos) << r.status.message();
}

TEST_F(TransferTest, MissingSourceIsALocalIoErrorNamingIt) {
  ReceiverThread rx(dst_.path());
  TransferReport r = send_files({src_ / "does-not-exist"}, rx.url(), quiet_options());
  EXPECT_EQ(r.status.code(), Error::kLocalIo);
  EXPECT_NE(r.status.message().find("does-not-exist"), std::string::npos) << r.status.message();
}

}  // namespace
}  // namespace ferry::test
