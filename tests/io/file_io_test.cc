// Both FileIo backends against real files: the same contract (io/file_io.h) for each.
// The io_uring cases skip, printing the reason, when this kernel refuses io_uring.
#include "io/file_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "io/safe_path.h"
#include "io/source_file.h"
#include "io/staged_file.h"
#include "io/uring_file_io.h"

namespace ferry {
namespace {

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// "posix", "uring" (default 1 MiB segments) and "uring_small_segments" (64 KiB, so one call
// spans many segments and more than one window of the ring).
class FileIoTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_file_io_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    if (GetParam() == "posix") {
      io_ = &posix_file_io();
      return;
    }
    std::string why;
    owned_ = make_uring_file_io(GetParam() == "uring" ? kDefaultUringSegment : 64 * 1024, &why);
    if (!owned_) GTEST_SKIP() << "io_uring refused by this kernel: " << why;
    io_ = owned_.get();
  }
  void TearDown() override {
    if (mounted_) ::umount2(mount_point_.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  int open_file(const std::string& name, int flags) {
    int fd = ::open((dir_ + "/" + name).c_str(), flags | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0) << name << ": " << std::strerror(errno);
    fds_.emplace_back(fd);
    return fd;
  }

  std::string dir_;
  FileIo* io_ = nullptr;
  std::unique_ptr<FileIo> owned_;
  std::vector<UniqueFd> fds_;
  std::string mount_point_;
  bool mounted_ = false;
};

TEST_P(FileIoTest, WritesAndReadsBackAtOffsets) {
  int fd = open_file("a.bin", O_RDWR | O_CREAT | O_TRUNC);
  // Not a multiple of any segment or page size, so the last piece is a ragged tail.
  auto data = random_bytes((5u << 20) + 12345, 1);
  const size_t kPiece = (1u << 20) + 7;
  // Out of order, as workers write chunks.
  std::vector<size_t> starts;
  for (size_t off = 0; off < data.size(); off += kPiece) starts.push_back(off);
  std::reverse(starts.begin(), starts.end());
  for (size_t off : starts) {
    size_t n = std::min(kPiece, data.size() - off);
    ASSERT_TRUE(io_->write_at(fd, "a.bin", off, data.data() + off, n).is_ok());
  }
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), data.size());

  std::vector<uint8_t> back(data.size(), 0);
  size_t got = 0;
  ASSERT_TRUE(io_->read_at(fd, "a.bin", 0, back.data(), back.size(), &got).is_ok());
  EXPECT_EQ(got, data.size());
  EXPECT_TRUE(back == data);
  // A read in the middle, across segment boundaries.
  std::vector<uint8_t> mid(3u << 20);
  ASSERT_TRUE(io_->read_at(fd, "a.bin", 777777, mid.data(), mid.size(), &got).is_ok());
  EXPECT_EQ(got, mid.size());
  EXPECT_EQ(std::memcmp(mid.data(), data.data() + 777777, mid.size()), 0);
}

TEST_P(FileIoTest, ReadStopsShortAtEndOfFile) {
  int fd = open_file("short.bin", O_RDWR | O_CREAT | O_TRUNC);
  auto data = random_bytes(300000, 2);  // spans several 64 KiB segments
  ASSERT_TRUE(io_->write_at(fd, "short.bin", 0, data.data(), data.size()).is_ok());
  std::vector<uint8_t> back(1u << 20, 0xEE);
  size_t got = 12345;
  ASSERT_TRUE(io_->read_at(fd, "short.bin", 1000, back.data(), back.size(), &got).is_ok());
  EXPECT_EQ(got, data.size() - 1000);
  EXPECT_EQ(std::memcmp(back.data(), data.data() + 1000, got), 0);
  // At and past the end: nothing, and no error.
  ASSERT_TRUE(io_->read_at(fd, "short.bin", data.size(), back.data(), 10, &got).is_ok());
  EXPECT_EQ(got, 0u);
  ASSERT_TRUE(io_->read_at(fd, "short.bin", uint64_t{1} << 40, back.data(), 10, &got).is_ok());
  EXPECT_EQ(got, 0u);
}

TEST_P(FileIoTest, OffsetsBeyondFourGibibytes) {
  int fd = open_file("sparse.bin", O_RDWR | O_CREAT | O_TRUNC);
  const uint64_t far = (uint64_t{5} << 30) + 4093;  // > 32 bits, not aligned
  auto data = random_bytes(200000, 3);
  ASSERT_TRUE(io_->write_at(fd, "sparse.bin", far, data.data(), data.size()).is_ok());
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), far + data.size());
  std::vector<uint8_t> back(data.size());
  size_t got = 0;
  ASSERT_TRUE(io_->read_at(fd, "sparse.bin", far, back.data(), back.size(), &got).is_ok());
  EXPECT_EQ(got, back.size());
  EXPECT_TRUE(back == data);
  // The hole before it reads as zeros.
  std::vector<uint8_t> hole(4096, 0xAA);
  ASSERT_TRUE(io_->read_at(fd, "sparse.bin", far - 4096, hole.data(), hole.size(), &got).is_ok());
  EXPECT_EQ(got, hole.size());
  EXPECT_EQ(std::count(hole.begin(), hole.end(), 0), 4096);
}

TEST_P(FileIoTest, WriteToReadOnlyDescriptorFailsNamingTheFile) {
  open_file("ro.bin", O_RDWR | O_CREAT | O_TRUNC);
  int fd = open_file("ro.bin", O_RDONLY);
  auto data = random_bytes(100000, 4);
  Status st = io_->write_at(fd, "shots/ro.bin", 0, data.data(), data.size());
  EXPECT_EQ(st.code(), Error::kLocalIo);
  EXPECT_EQ(st.message(), std::string("write 'shots/ro.bin': ") + std::strerror(EBADF));
}

TEST_P(FileIoTest, ReadFromWriteOnlyDescriptorFailsNamingTheFile) {
  int fd = open_file("wo.bin", O_WRONLY | O_CREAT | O_TRUNC);
  std::vector<uint8_t> buf(4096);
  size_t got = 0;
  Status st = io_->read_at(fd, "wo.bin", 0, buf.data(), buf.size(), &got);
  EXPECT_EQ(st.code(), Error::kLocalIo);
  EXPECT_EQ(st.message(), std::string("read 'wo.bin': ") + std::strerror(EBADF));
}

// Workers share one file and each writes its own chunks, as the receiver does.
TEST_P(FileIoTest, ConcurrentWritersOfOneFile) {
  int fd = open_file("shared.bin", O_RDWR | O_CREAT | O_TRUNC);
  const size_t kChunk = 256 * 1024 + 3, kChunks = 48;
  auto data = random_bytes(kChunk * kChunks, 5);
  std::vector<std::thread> threads;
  std::vector<Status> results(4);
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t c = t; c < kChunks && results[t].is_ok(); c += 4)
        results[t] = io_->write_at(fd, "shared.bin", c * kChunk, data.data() + c * kChunk, kChunk);
    });
  }
  for (auto& th : threads) th.join();
  for (const Status& st : results) EXPECT_TRUE(st.is_ok()) << st.message();
  std::vector<uint8_t> back(data.size());
  size_t got = 0;
  ASSERT_TRUE(io_->read_at(fd, "shared.bin", 0, back.data(), back.size(), &got).is_ok());
  EXPECT_EQ(got, back.size());
  EXPECT_TRUE(back == data);
}

// A real full filesystem: a 1 MiB tmpfs mounted by the test (needs root).
TEST_P(FileIoTest, FullFilesystemIsNoSpaceLeftOnDeviceNamingTheFile) {
  mount_point_ = dir_ + "/small";
  ASSERT_EQ(::mkdir(mount_point_.c_str(), 0755), 0);
  if (::mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, "size=1m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << std::strerror(errno);
  mounted_ = true;
  int fd = open_file("small/full.bin", O_RDWR | O_CREAT | O_TRUNC);
  auto data = random_bytes(3u << 20, 6);
  Status st = io_->write_at(fd, "shots/full.bin", 0, data.data(), data.size());
  EXPECT_EQ(st.code(), Error::kLocalIo);
  EXPECT_EQ(st.message(), "write 'shots/full.bin': No space left on device");

  // The same through StagedFile, as the receiver sees it.
  Result<RootDir> root = RootDir::open(mount_point_, false);
  ASSERT_TRUE(root.is_ok());
  ASSERT_EQ(::ftruncate(fd, 0), 0);  // free what the first write took
  auto staged = StagedFile::create(*root, "plates/f 0001.exr", 0, "t1", *io_);
  ASSERT_TRUE(staged.is_ok()) << staged.status().message();
  Status sst = (*staged)->write_at(0, data.data(), data.size());
  EXPECT_EQ(sst.code(), Error::kLocalIo);
  EXPECT_EQ(sst.message(), "write 'plates/f 0001.exr': No space left on device");
}

TEST_P(FileIoTest, SourceFileThatShrankNamesTheFile) {
  std::string path = dir_ + "/src.bin";
  int fd = open_file("src.bin", O_RDWR | O_CREAT | O_TRUNC);
  auto data = random_bytes(100000, 7);
  ASSERT_TRUE(io_->write_at(fd, "src.bin", 0, data.data(), data.size()).is_ok());
  auto src = SourceFile::open(path, 200000, *io_);  // scanned larger than it now is
  ASSERT_TRUE(src.is_ok()) << src.status().message();
  std::vector<uint8_t> buf(150000);
  Status st = (*src)->read_at(0, buf.data(), buf.size());
  EXPECT_EQ(st.code(), Error::kLocalIo);
  EXPECT_EQ(st.message(), "'" + path + "' changed during the transfer (shorter than scanned)");
  ASSERT_TRUE((*src)->read_at(50000, buf.data(), 50000).is_ok());
  EXPECT_EQ(std::memcmp(buf.data(), data.data() + 50000, 50000), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, FileIoTest, ::testing::Values("posix", "uring", "uring_small_segments"),
                         [](const auto& info) { return info.param; });

TEST(FileIoSelection, ParsesTheThreeModesAndRejectsOthers) {
  EXPECT_EQ(*parse_io_mode("auto", "--io"), IoMode::kAuto);
  EXPECT_EQ(*parse_io_mode("posix", "--io"), IoMode::kPosix);
  EXPECT_EQ(*parse_io_mode("uring", "--io"), IoMode::kUring);
  auto bad = parse_io_mode("aio", "--io");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), Error::kUsage);
  EXPECT_EQ(bad.status().message(), "--io must be auto, posix or uring, not 'aio'");
}

TEST(FileIoSelection, ConfigureSelectsTheProcessWideBackend) {
  configure_file_io(IoMode::kPosix);
  EXPECT_STREQ(default_file_io().name(), "posix");
  std::string why;
  FileIo* uring = uring_file_io(&why);
  configure_file_io(IoMode::kUring);
  // Without io_uring the request falls back to posix rather than failing the transfer.
  EXPECT_STREQ(default_file_io().name(), uring ? "uring" : "posix") << why;
  configure_file_io(IoMode::kAuto);
  EXPECT_STREQ(default_file_io().name(), kAutoChoice == IoMode::kUring && uring ? "uring" : "posix");
  configure_file_io(IoMode::kPosix);
}

}  // namespace
}  // namespace ferry
