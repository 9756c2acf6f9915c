// Tests for src/session/chunk_scheduler.{h,cc}: resends first, chunks of a file in order,
// then the next file, under an open-file window.
#include "session/chunk_scheduler.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ferry {
namespace {

std::string str(const ChunkTask& t) {
  return "(" + std::to_string(t.file_id) + "," + std::to_string(t.chunk_index) + (t.resend ? ",resend)" : ")");
}

// Peeks and pops one task; fails the test if nothing is schedulable.
ChunkTask take(ChunkScheduler& s) {
  ChunkTask t{UINT32_MAX, UINT32_MAX, false};
  EXPECT_TRUE(s.peek(&t)) << "nothing schedulable";
  s.pop();
  return t;
}

// Takes tasks until peek() says no; returns them as "(file,chunk)" strings.
std::vector<std::string> drain(ChunkScheduler& s, size_t limit = 10'000) {
  std::vector<std::string> out;
  ChunkTask t{};
  while (out.size() < limit && s.peek(&t)) {
    out.push_back(str(t));
    s.pop();
  }
  return out;
}

TEST(ChunkScheduler, NewSchedulerIsIdleAndHasNothingToPeek) {
  ChunkScheduler s(4);
  ChunkTask t{7, 7, true};
  EXPECT_TRUE(s.idle());
  EXPECT_FALSE(s.peek(&t));
  EXPECT_EQ(s.open_files(), 0u);
}

TEST(ChunkScheduler, ChunksOfAFileComeInOrderThenTheNextFile) {
  ChunkScheduler s(16);
  s.add_file(10, 3);
  s.add_file(11, 1);
  s.add_file(12, 2);
  EXPECT_EQ(drain(s), (std::vector<std::string>{"(10,0)", "(10,1)", "(10,2)", "(11,0)", "(12,0)", "(12,1)"}));
  EXPECT_TRUE(s.idle());
}

TEST(ChunkScheduler, PeekDoesNotConsume) {
  ChunkScheduler s(4);
  s.add_file(1, 2);
  ChunkTask a{}, b{};
  ASSERT_TRUE(s.peek(&a));
  ASSERT_TRUE(s.peek(&b));
  EXPECT_EQ(str(a), "(1,0)");
  EXPECT_EQ(str(b), "(1,0)");
  s.pop();
  ASSERT_TRUE(s.peek(&a));
  EXPECT_EQ(str(a), "(1,1)");
}

TEST(ChunkScheduler, ResendsComeBeforeNewChunks) {
  ChunkScheduler s(4);
  s.add_file(1, 4);
  s.add_file(2, 2);
  EXPECT_EQ(str(take(s)), "(1,0)");
  EXPECT_EQ(str(take(s)), "(1,1)");
  s.add_resend(1, 0);
  s.add_resend(7, 9);  // a file whose chunks were all scheduled already
  ChunkTask t{};
  ASSERT_TRUE(s.peek(&t));
  EXPECT_TRUE(t.resend);
  // Resends in the order they were asked for, then the interrupted file resumes where it was.
  EXPECT_EQ(drain(s),
            (std::vector<std::string>{"(1,0,resend)", "(7,9,resend)", "(1,2)", "(1,3)", "(2,0)", "(2,1)"}));
}

TEST(ChunkScheduler, NewChunksAreNotMarkedAsResends) {
  ChunkScheduler s(4);
  s.add_file(3, 2);
  EXPECT_FALSE(take(s).resend);
  EXPECT_FALSE(take(s).resend);
}

TEST(ChunkScheduler, ResendOfTheSameChunkTwiceIsScheduledTwice) {
  ChunkScheduler s(4);
  s.add_resend(5, 1);
  s.add_resend(5, 1);
  EXPECT_EQ(drain(s), (std::vector<std::string>{"(5,1,resend)", "(5,1,resend)"}));
}

TEST(ChunkScheduler, AFileCountsAsOpenFromItsFirstScheduledChunk) {
  ChunkScheduler s(4);
  s.add_file(1, 3);
  s.add_file(2, 3);
  EXPECT_EQ(s.open_files(), 0u);  // queued is not open
  take(s);
  EXPECT_EQ(s.open_files(), 1u);
  take(s);
  take(s);
  EXPECT_EQ(s.open_files(), 1u);  // all chunks out, still open until its FILE_RESULT
  take(s);
  EXPECT_EQ(s.open_files(), 2u);
}

TEST(ChunkScheduler, OpenFileWindowBlocksStartingANewFileUntilFileClosed) {
  const uint32_t window = 3;
  ChunkScheduler s(window);
  for (uint32_t f = 0; f < 5; ++f) s.add_file(f, 2);
  EXPECT_EQ(drain(s), (std::vector<std::string>{"(0,0)", "(0,1)", "(1,0)", "(1,1)", "(2,0)", "(2,1)"}));
  EXPECT_EQ(s.open_files(), window);
  ChunkTask t{};
  EXPECT_FALSE(s.peek(&t)) << "started a 4th file with a window of 3: " << str(t);
  EXPECT_FALSE(s.idle()) << "files are still queued";

  s.file_closed();
  EXPECT_EQ(s.open_files(), window - 1);
  // Exactly one more file may start.
  EXPECT_EQ(drain(s), (std::vector<std::string>{"(3,0)", "(3,1)"}));
  EXPECT_EQ(s.open_files(), window);
  EXPECT_FALSE(s.peek(&t));

  s.file_closed();
  EXPECT_EQ(drain(s), (std::vector<std::string>{"(4,0)", "(4,1)"}));
  EXPECT_TRUE(s.idle());
}

TEST(ChunkScheduler, WindowDoesNotStopTheRestOfAFileAlreadyStarted) {
  ChunkScheduler s(1);
  s.add_file(1, 3);
  s.add_file(2, 1);
  EXPECT_EQ(str(take(s)), "(1,0)");
  EXPECT_EQ(s.open_files(), 1u);
  EXPECT_EQ(drain(s), (std::vector<std::string>{"(1,1)", "(1,2)"}));
  ChunkTask t{};
  EXPECT_FALSE(s.peek(&t));
}

TEST(ChunkScheduler, ResendsAreNotBlockedByTheWindow) {
  ChunkScheduler s(1);
  s.add_file(1, 1);
  s.add_file(2, 1);
  take(s);
  ChunkTask t{};
  ASSERT_FALSE(s.peek(&t));
  s.add_resend(1, 0);
  ASSERT_TRUE(s.peek(&t));
  EXPECT_EQ(str(t), "(1,0,resend)");
  s.pop();
  EXPECT_FALSE(s.peek(&t));
  EXPECT_EQ(s.open_files(), 1u);  // a resend does not open a file
}

TEST(ChunkScheduler, FileClosedWithNothingOpenDoesNotUnderflow) {
  ChunkScheduler s(1);
  s.file_closed();
  EXPECT_EQ(s.open_files(), 0u);
  s.add_file(1, 1);
  s.add_file(2, 1);
  take(s);
  ChunkTask t{};
  EXPECT_FALSE(s.peek(&t)) << "a spurious file_closed() must not widen the window";
}

TEST(ChunkScheduler, IdleMeansNothingQueuedEvenWithOpenFiles) {
  ChunkScheduler s(2);
  EXPECT_TRUE(s.idle());
  s.add_file(1, 2);
  EXPECT_FALSE(s.idle());
  take(s);
  EXPECT_FALSE(s.idle()) << "chunk 1 is still to come";
  take(s);
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(s.open_files(), 1u);
  s.add_resend(1, 1);
  EXPECT_FALSE(s.idle());
  take(s);
  EXPECT_TRUE(s.idle());
}

TEST(ChunkScheduler, ManyFilesKeepOrderAndWindowInvariant) {
  const uint32_t window = 4;
  ChunkScheduler s(window);
  std::vector<uint32_t> counts;
  for (uint32_t f = 0; f < 50; ++f) {
    counts.push_back(1 + f % 5);
    s.add_file(f, counts.back());
  }
  uint32_t expect_file = 0, expect_chunk = 0, closed = 0;
  std::vector<uint32_t> finished;  // files whose last chunk went out, not yet closed
  size_t steps = 0;
  while (!s.idle() && steps++ < 10'000) {
    ChunkTask t{};
    if (!s.peek(&t)) {
      ASSERT_EQ(s.open_files(), window) << "blocked below the window";
      ASSERT_FALSE(finished.empty());
      finished.erase(finished.begin());
      s.file_closed();
      ++closed;
      continue;
    }
    s.pop();
    ASSERT_FALSE(t.resend);
    ASSERT_EQ(t.file_id, expect_file);
    ASSERT_EQ(t.chunk_index, expect_chunk);
    ASSERT_LE(s.open_files(), window);
    if (++expect_chunk == counts[expect_file]) {
      finished.push_back(expect_file);
      ++expect_file;
      expect_chunk = 0;
    }
  }
  EXPECT_EQ(expect_file, 50u);
  EXPECT_EQ(closed + s.open_files(), 50u);
}

}  // namespace
}  // namespace ferry
