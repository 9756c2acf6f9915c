// `ferry sync SRC s3://BUCKET/PREFIX/` against s3rver: changed, added and deleted files,
// --delete confined to the prefix and to non-excluded paths, --dry-run, nothing-to-do.
#include <sys/stat.h>

#include "s3/s3_client.h"
#include "s3_test_support.h"

namespace ferry::s3::test {
namespace {

class S3SyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    use_s3rver_credentials();
    server_.start({"bkt"});
    auto c = make_client({"bkt", ""}, server_.options());
    ASSERT_TRUE(c) << c.status().message();
    client_ = std::move(*c);
    root_ = tmp_ / "src";
    ::mkdir(root_.c_str(), 0755);
    ::mkdir((root_ + "/sub").c_str(), 0755);
    write_random_file(root_ + "/a.exr", 5000, 1);
    write_random_file(root_ + "/b.exr", 6000, 2);
    write_random_file(root_ + "/sub/c.exr", 7000, 3);
    write_random_file(root_ + "/sub/big.vdb", 20ull << 20, 4);
  }

  CommandResult sync(const std::string& extra) {
    return run(kFerry + " sync --json --no-progress --endpoint " + server_.endpoint() + " --state-dir " + state_.path() +
               " " + extra + " '" + root_ + "' s3://bkt/shot/");
  }

  void put(const std::string& key, const std::string& data) {
    auto etag = client_->put_object(key, reinterpret_cast<const uint8_t*>(data.data()), data.size(),
                                    md5(data.data(), data.size()), {});
    ASSERT_TRUE(etag) << etag.status().message();
  }

  bool exists(const std::string& key) {
    auto h = client_->head_object(key);
    EXPECT_TRUE(h);
    return h && h->found;
  }

  std::string get(const std::string& key) {
    auto d = client_->get_object(key, 1 << 30);
    EXPECT_TRUE(d) << d.status().message();
    return d ? *d : "";
  }

  S3rver server_;
  TempDir tmp_{"s3-sync"};
  TempDir state_{"s3-sync-state"};
  std::string root_;
  std::unique_ptr<S3Client> client_;
};

TEST_F(S3SyncTest, SendsChangesAndDeletesOnlyBelowThePrefix) {
  auto first = sync("");
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_EQ(json_number(first.out, "files_sent"), 4);
  // Neighbours that --delete must never touch: outside the prefix, a sibling prefix that
  // shares its first letters, and an excluded path inside it.
  put("other/keep.exr", "x");
  put("shot2/keep.exr", "y");
  put("shot/notes.keep", "z");
  put("shot/stale.exr", "gone soon");

  write_random_file(root_ + "/a.exr", 5001, 11);  // size changed
  write_random_file(root_ + "/b.exr", 6000, 12);  // same size, new bytes
  struct timespec ts[2] = {{0, UTIME_OMIT}, {1'600'000'000, 0}};
  ::utimensat(AT_FDCWD, (root_ + "/b.exr").c_str(), ts, 0);
  write_random_file(root_ + "/sub/new.exr", 100, 13);  // added
  ::unlink((root_ + "/sub/c.exr").c_str());             // deleted

  auto second = sync("--delete --exclude '*.keep'");
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_EQ(json_number(second.out, "files_sent"), 3) << second.out;     // a, b, new
  EXPECT_EQ(json_number(second.out, "files_skipped"), 1) << second.out;  // big.vdb
  EXPECT_EQ(json_number(second.out, "deleted"), 2) << second.out;        // c.exr, stale.exr
  EXPECT_EQ(get("shot/a.exr"), read_file(root_ + "/a.exr"));
  EXPECT_EQ(get("shot/b.exr"), read_file(root_ + "/b.exr"));
  EXPECT_EQ(get("shot/sub/new.exr"), read_file(root_ + "/sub/new.exr"));
  EXPECT_FALSE(exists("shot/sub/c.exr"));
  EXPECT_FALSE(exists("shot/stale.exr"));
  EXPECT_TRUE(exists("other/keep.exr"));
  EXPECT_TRUE(exists("shot2/keep.exr"));
  EXPECT_TRUE(exists("shot/notes.keep"));

  auto third = sync("--delete --exclude '*.keep'");
  EXPECT_EQ(third.exit_code, 10) << third.out << third.err;  // in sync: nothing to do
}

TEST_F(S3SyncTest, TouchedButIdenticalFileIsRecognisedByItsStoredHash) {
  ASSERT_EQ(sync("").exit_code, 0);
  struct timespec ts[2] = {{0, UTIME_OMIT}, {1'500'000'000, 0}};
  ::utimensat(AT_FDCWD, (root_ + "/sub/big.vdb").c_str(), ts, 0);
  auto r = sync("");
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;  // same size, same x-amz-meta-ferry-xxh3
  EXPECT_EQ(json_number(r.out, "chunks_sent"), 0);
}

TEST_F(S3SyncTest, DryRunReportsThePlanAndChangesNothing) {
  put("shot/extra.exr", "x");
  auto r = run(kFerry + " sync --dry-run --delete --no-progress --endpoint " + server_.endpoint() + " --state-dir " +
               state_.path() + " '" + root_ + "' s3://bkt/shot/");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("send   a.exr"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("delete extra.exr"), std::string::npos) << r.out;
  EXPECT_TRUE(exists("shot/extra.exr"));
  EXPECT_FALSE(exists("shot/a.exr"));
}

TEST_F(S3SyncTest, ListingFollowsContinuationTokensAcrossPages) {
  for (int i = 0; i < 23; ++i) put("page/k" + std::to_string(100 + i), std::to_string(i));
  put("pagex/outside", "x");
  auto all = client_->list_objects("page/", 5);  // 5 pages: four full, one of 3
  ASSERT_TRUE(all) << all.status().message();
  ASSERT_EQ(all->size(), 23u);
  for (int i = 0; i < 23; ++i) EXPECT_EQ((*all)[i].key, "page/k" + std::to_string(100 + i));
  EXPECT_GE(client_->requests.load(), 5u);
}

}  // namespace
}  // namespace ferry::s3::test
