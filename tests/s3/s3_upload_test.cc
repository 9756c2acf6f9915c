// Uploads to a real S3-compatible server (s3rver on loopback), read back with ferry's own
// GET and with Debian's awscli; interrupted multipart uploads resumed; credential errors.
#include <sys/stat.h>

#include "s3/s3_client.h"
#include "s3/upload_journal.h"
#include "s3_test_support.h"

namespace ferry::s3::test {
namespace {

class S3UploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    use_s3rver_credentials();
    server_.start({"bkt"});
  }

  std::string flags() const {
    return "--endpoint " + server_.endpoint() + " --state-dir " + state_.path() + " --no-progress";
  }

  std::string get(const std::string& key) {
    auto data = get_object({"bkt", ""}, key, server_.options());
    EXPECT_TRUE(data) << data.status().message();
    return data ? *data : std::string();
  }

  // Reads the object with `aws s3api get-object` into a file and returns its bytes.
  std::string get_with_awscli(const std::string& key) {
    std::string out = tmp_ / "awscli.out";
    auto r = run(aws_cli() + " --endpoint-url " + server_.endpoint() + " s3api get-object --bucket bkt --key '" + key +
                 "' '" + out + "'");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return read_file(out);
  }

  HeadResult head(const std::string& key) {
    auto c = make_client({"bkt", ""}, server_.options());
    EXPECT_TRUE(c);
    auto h = (*c)->head_object(key);
    EXPECT_TRUE(h) << h.status().message();
    return h ? *h : HeadResult{};
  }

  size_t journal_count() { return UploadJournal::list(state_.path()).size(); }

  S3rver server_;
  TempDir tmp_{"s3-up"};
  TempDir state_{"s3-state"};
};

TEST_F(S3UploadTest, SmallFileGoesInOnePutAndReadsBackIdentically) {
  std::string src = tmp_ / "frame.0001.exr";
  write_random_file(src, 100'000, 1);
  auto r = run(kFerry + " send --json " + flags() + " '" + src + "' s3://bkt/plates/");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(json_number(r.out, "files_sent"), 1);
  EXPECT_EQ(json_number(r.out, "chunks_sent"), 1);  // one PUT, no multipart
  std::string want = read_file(src);
  EXPECT_EQ(get("plates/frame.0001.exr"), want);
  EXPECT_EQ(get_with_awscli("plates/frame.0001.exr"), want);
  HeadResult h = head("plates/frame.0001.exr");
  EXPECT_EQ(h.meta("ferry-xxh3"), xxh3_of_file(src));
  EXPECT_EQ(h.etag, md5(want.data(), want.size()).hex());
}

TEST_F(S3UploadTest, LargeFileGoesMultipartAndReadsBackIdentically) {
  std::string src = tmp_ / "cache.vdb";
  write_random_file(src, (64ull << 20) + 12345, 2);  // 64 MiB and a short fifth part
  auto r = run(kFerry + " send --json " + flags() + " '" + src + "' s3://bkt/caches");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(json_number(r.out, "chunks_sent"), 5);  // 16 MiB parts
  EXPECT_EQ(json_number(r.out, "bytes_on_disk"), (64ll << 20) + 12345);
  std::string want = read_file(src);
  EXPECT_TRUE(get("caches/cache.vdb") == want);
  EXPECT_TRUE(get_with_awscli("caches/cache.vdb") == want);
  // The hash is only known after the last part: stored by a self-copy with REPLACE.
  HeadResult h = head("caches/cache.vdb");
  EXPECT_EQ(h.meta("ferry-xxh3"), xxh3_of_file(src));
  EXPECT_FALSE(h.meta("ferry-mtime").empty());
  EXPECT_EQ(journal_count(), 0u) << "a completed upload leaves no journal";
}

TEST_F(S3UploadTest, TreeUploadsEveryFileBelowThePrefix) {
  std::string root = tmp_ / "shot";
  ::mkdir(root.c_str(), 0755);
  ::mkdir((root + "/comp").c_str(), 0755);
  ::mkdir((root + "/comp/v001").c_str(), 0755);
  for (int i = 0; i < 12; ++i) write_random_file(root + "/comp/v001/f." + std::to_string(1000 + i) + ".exr", 1000 * i + 7, i);
  write_random_file(root + "/comp/big plate.dpx", 20ull << 20, 99);  // multipart, a space in the key
  write_random_file(root + "/empty", 0, 0);
  auto r = run(kFerry + " send --json --s3-concurrency 4 --part-size 5M " + flags() + " '" + root + "' s3://bkt/proj/");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(json_number(r.out, "files_sent"), 14);
  auto c = make_client({"bkt", ""}, server_.options());
  ASSERT_TRUE(c);
  auto listed = (*c)->list_objects("proj/");
  ASSERT_TRUE(listed) << listed.status().message();
  EXPECT_EQ(listed->size(), 14u);
  for (int i = 0; i < 12; ++i) {
    std::string rel = "shot/comp/v001/f." + std::to_string(1000 + i) + ".exr";
    EXPECT_EQ(get("proj/" + rel), read_file(root + "/comp/v001/f." + std::to_string(1000 + i) + ".exr")) << rel;
  }
  EXPECT_TRUE(get("proj/shot/comp/big plate.dpx") == read_file(root + "/comp/big plate.dpx"));
  EXPECT_TRUE(get_with_awscli("proj/shot/comp/big plate.dpx") == read_file(root + "/comp/big plate.dpx"));
  EXPECT_EQ(get("proj/shot/empty"), "");
}

TEST_F(S3UploadTest, KilledMultipartUploadResumesWithOnlyTheMissingParts) {
  std::string src = tmp_ / "sim.bgeo";
  write_random_file(src, 96ull << 20, 3);  // 12 parts of 8 MiB
  std::string cmd = kFerry + " send --json --part-size 8M --s3-concurrency 2 " + flags() + " '" + src + "' s3://bkt/sims/";
  // TEST-ONLY FAULT: the CLI SIGKILLs itself once 4 parts are journaled.
  auto killed = run(cmd, "FERRY_TEST_SIGKILL_AFTER_CHUNKS=4");
  ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.out << killed.err;
  ASSERT_EQ(journal_count(), 1u);
  EXPECT_FALSE(head("sims/sim.bgeo").found) << "no object may appear before the upload completes";

  // `ferry s3 uploads` shows it (s3rver cannot list uploads: this machine's journal can).
  auto listed = run(kFerry + " s3 uploads --json --endpoint " + server_.endpoint() + " --state-dir " + state_.path() + " s3://bkt/sims/");
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("\"key\":\"sims/sim.bgeo\""), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("\"origin\":\"journal\""), std::string::npos) << listed.out;

  auto resumed = run(cmd);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  long long sent = json_number(resumed.out, "chunks_sent"), kept = json_number(resumed.out, "chunks_resumed");
  EXPECT_GE(kept, 4);
  EXPECT_EQ(sent + kept, 12) << resumed.out;
  EXPECT_EQ(json_number(resumed.out, "bytes_resumed"), kept * (8ll << 20));
  EXPECT_TRUE(get("sims/sim.bgeo") == read_file(src));
  EXPECT_EQ(head("sims/sim.bgeo").meta("ferry-xxh3"), xxh3_of_file(src));
  EXPECT_EQ(journal_count(), 0u);
}

TEST_F(S3UploadTest, ChangedSourceStartsTheUploadOver) {
  std::string src = tmp_ / "sim.bgeo";
  write_random_file(src, 40ull << 20, 4);
  std::string cmd = kFerry + " send --json --part-size 5M --s3-concurrency 1 " + flags() + " '" + src + "' s3://bkt/sims/";
  ASSERT_EQ(run(cmd, "FERRY_TEST_SIGKILL_AFTER_CHUNKS=3").exit_code, 128 + SIGKILL);
  write_random_file(src, 40ull << 20, 5);  // same size, new bytes, new mtime
  struct timespec ts[2] = {{0, UTIME_OMIT}, {1'700'000'000, 0}};
  ::utimensat(AT_FDCWD, src.c_str(), ts, 0);
  auto r = run(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(json_number(r.out, "chunks_resumed"), 0);
  EXPECT_EQ(json_number(r.out, "chunks_sent"), 8);
  EXPECT_TRUE(get("sims/sim.bgeo") == read_file(src));
}

TEST_F(S3UploadTest, UploadsAbortOlderThanDropsJournaledUploads) {
  std::string src = tmp_ / "x.bin";
  write_random_file(src, 30ull << 20, 6);
  std::string cmd = kFerry + " send --json --part-size 5M --s3-concurrency 1 " + flags() + " '" + src + "' s3://bkt/a/";
  ASSERT_EQ(run(cmd, "FERRY_TEST_SIGKILL_AFTER_CHUNKS=2").exit_code, 128 + SIGKILL);
  std::string uploads = kFerry + " s3 uploads --json --endpoint " + server_.endpoint() + " --state-dir " + state_.path();
  // Another prefix does not see it; a 7-day cutoff keeps it.
  auto other = run(uploads + " s3://bkt/b/");
  EXPECT_EQ(other.out.find("x.bin"), std::string::npos) << other.out;
  auto kept = run(uploads + " --abort-older-than 7d s3://bkt/a/");
  EXPECT_NE(kept.out.find("\"aborted\":false"), std::string::npos) << kept.out;
  EXPECT_EQ(journal_count(), 1u);
  auto aborted = run(uploads + " --abort-older-than 0s s3://bkt/a/");
  ASSERT_EQ(aborted.exit_code, 0) << aborted.err;
  EXPECT_NE(aborted.out.find("\"aborted\":true"), std::string::npos) << aborted.out;
  EXPECT_EQ(journal_count(), 0u);
  auto again = run(cmd);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json_number(again.out, "chunks_resumed"), 0);
  EXPECT_EQ(json_number(again.out, "chunks_sent"), 6);
}

TEST_F(S3UploadTest, UnknownAccessKeyIsRefusedWithExitCode6) {
  std::string src = tmp_ / "a";
  write_random_file(src, 10, 7);
  auto r = run(kFerry + " send " + flags() + " '" + src + "' s3://bkt/p/", "AWS_ACCESS_KEY_ID=NOT-A-KEY");
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("403"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("InvalidAccessKeyId"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("credentials from environment"), std::string::npos) << r.err;
}

TEST_F(S3UploadTest, MissingBucketIsAUsageError) {
  std::string src = tmp_ / "a";
  write_random_file(src, 10, 8);
  auto r = run(kFerry + " send " + flags() + " '" + src + "' s3://no-such-bucket/p/");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
}

TEST_F(S3UploadTest, CredentialsComeFromTheNamedProfile) {
  std::string creds = tmp_ / "credentials";
  std::ofstream(creds) << "[default]\naws_access_key_id = WRONG\naws_secret_access_key = x\n\n[studio]\n"
                          "aws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n";
  std::string src = tmp_ / "a";
  write_random_file(src, 10, 9);
  std::string env = "-u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE=" + creds +
                    " AWS_CONFIG_FILE=/nonexistent AWS_PROFILE=studio";
  auto r = run(kFerry + " send " + flags() + " '" + src + "' s3://bkt/p/", env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto wrong = run(kFerry + " send " + flags() + " '" + src + "' s3://bkt/q/", "-u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE=" + creds + " AWS_CONFIG_FILE=/nonexistent AWS_PROFILE=default");
  EXPECT_EQ(wrong.exit_code, 6) << wrong.err;
  EXPECT_NE(wrong.err.find("profile 'default'"), std::string::npos) << wrong.err;
}

TEST_F(S3UploadTest, NoCredentialsAnywhereIsReportedClearly) {
  std::string src = tmp_ / "a";
  write_random_file(src, 10, 10);
  auto r = run(kFerry + " send " + flags() + " '" + src + "' s3://bkt/p/",
               "-u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE=/nonexistent/c "
               "AWS_CONFIG_FILE=/nonexistent/f AWS_PROFILE=x AWS_EC2_METADATA_DISABLED=true");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("no AWS credentials found (tried: environment, /nonexistent/c profile 'x'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("EC2 instance metadata"), std::string::npos) << r.err;
}

TEST_F(S3UploadTest, OverwriteDiffSkipsObjectsAlreadyUploaded) {
  std::string root = tmp_ / "d";
  ::mkdir(root.c_str(), 0755);
  write_random_file(root + "/a", 1000, 11);
  write_random_file(root + "/b", 17ull << 20, 12);
  std::string cmd = kFerry + " send --json " + flags() + " '" + root + "/' s3://bkt/o/";
  ASSERT_EQ(run(cmd).exit_code, 0);
  auto again = run(cmd);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json_number(again.out, "files_skipped"), 2);
  EXPECT_EQ(json_number(again.out, "chunks_sent"), 0);
}

}  // namespace
}  // namespace ferry::s3::test
