// Tokens: created, listed and revoked through the real `ferryd token` CLI; only hashes on
// disk (the token never appears in the store); mode 0600 and atomic replacement; expiry;
// and what the verifier answers.
#include "daemon/token_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "daemon_util.h"

namespace ferry::daemon {
namespace {

using test::run_command;

class TokenStoreTest : public ::testing::Test {
 protected:
  test::DaemonLayout layout_{{"plates", "cache"}};
  std::string store_path() const { return layout_.dir / "state/tokens.toml"; }

  // `ferryd token new`; returns the token printed on stdout.
  std::string new_token(const std::string& name, const std::vector<std::string>& grants,
                        const std::string& expires = "") {
    std::vector<std::string> args = {FERRYD_BINARY, "token", "new", "--config", layout_.config_path, "--name", name};
    for (const auto& g : grants) args.insert(args.end(), {"--grant", g});
    if (!expires.empty()) args.insert(args.end(), {"--expires", expires});
    auto r = run_command(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto lines = test::lines_of(r.out);
    EXPECT_EQ(lines.size(), 1u) << r.out;  // the token and nothing else on stdout
    return lines.empty() ? "" : lines[0];
  }
};

TEST_F(TokenStoreTest, NewPrintsTokenOnceAndStoresOnlyItsHash) {
  std::string token = new_token("nightly", {"plates:rw", "cache:r"}, "30d");
  ASSERT_EQ(token.size(), kTokenPrefix.size() + 64) << token;
  EXPECT_EQ(token.rfind(kTokenPrefix, 0), 0u);

  std::string text = test::read_text(store_path());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.find(token), std::string::npos) << "the token itself is on disk";
  EXPECT_EQ(text.find(token.substr(kTokenPrefix.size())), std::string::npos) << "the token's secret part is on disk";
  EXPECT_EQ(text.find(token.substr(kTokenPrefix.size(), 16)), std::string::npos);
  EXPECT_NE(text.find("sha256 = \""), std::string::npos);
  EXPECT_NE(text.find("grants = [\"plates:rw\", \"cache:r\"]"), std::string::npos) << text;

  struct stat st {};
  ASSERT_EQ(stat(store_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temporary file is left beside it.
  auto r = run_command({"sh", "-c", "ls -a '" + layout_.dir.path() + "/state'"});
  EXPECT_EQ(r.out.find(".tmp-"), std::string::npos) << r.out;

  // The stored hash verifies the token and yields its grants.
  auto store = TokenStore::load(store_path());
  ASSERT_TRUE(store) << store.status().message();
  auto access = store->verify(token, static_cast<int64_t>(time(nullptr)));
  ASSERT_TRUE(access) << access.status().message();
  ASSERT_EQ(access->size(), 2u);
  EXPECT_EQ((*access)[0].export_name, "plates");
  EXPECT_TRUE((*access)[0].read && (*access)[0].write);
  EXPECT_EQ((*access)[1].export_name, "cache");
  EXPECT_TRUE((*access)[1].read);
  EXPECT_FALSE((*access)[1].write);
}

TEST_F(TokenStoreTest, ListShowsTokensButNeverTheSecret) {
  std::string a = new_token("alice", {"plates:w"});
  std::string b = new_token("render-farm", {"cache:rw"}, "12h");
  auto r = run_command({FERRYD_BINARY, "token", "list", "--config", layout_.config_path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = test::lines_of(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_NE(lines[1].find("alice"), std::string::npos);
  EXPECT_NE(lines[1].find("plates:w"), std::string::npos);
  EXPECT_NE(lines[1].find("never"), std::string::npos);
  EXPECT_NE(lines[1].find("active"), std::string::npos);
  EXPECT_NE(lines[2].find("render-farm"), std::string::npos);
  EXPECT_EQ(r.out.find(a.substr(kTokenPrefix.size(), 12)), std::string::npos);
  EXPECT_EQ(r.out.find(b.substr(kTokenPrefix.size(), 12)), std::string::npos);
}

TEST_F(TokenStoreTest, RevokeByNameOrIdRefusesTheToken) {
  std::string a = new_token("alice", {"plates:rw"});
  std::string b = new_token("bob", {"plates:rw"});
  auto verifier = make_token_verifier(store_path());
  ASSERT_TRUE(verifier(a));
  ASSERT_TRUE(verifier(b));

  auto r = run_command({FERRYD_BINARY, "token", "revoke", "--config", layout_.config_path, "alice"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("revoked token 'alice'"), std::string::npos) << r.out;
  // The same verifier sees the change (it re-reads the store when it changes).
  auto refused = verifier(a);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().code(), Error::kRefused);
  EXPECT_NE(refused.status().message().find("token 'alice'"), std::string::npos);
  EXPECT_NE(refused.status().message().find("is revoked"), std::string::npos);
  EXPECT_TRUE(verifier(b));

  // By id, as `token list` shows it.
  auto store = TokenStore::load(store_path());
  ASSERT_TRUE(store);
  std::string bob_id = store->tokens()[1].id;
  r = run_command({FERRYD_BINARY, "token", "revoke", "--config", layout_.config_path, bob_id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(verifier(b));

  auto list = run_command({FERRYD_BINARY, "token", "list", "--config", layout_.config_path});
  EXPECT_EQ(test::lines_of(list.out).size(), 3u);
  EXPECT_NE(list.out.find("revoked"), std::string::npos);

  auto unknown = run_command({FERRYD_BINARY, "token", "revoke", "--config", layout_.config_path, "carol"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no token with id or name 'carol'"), std::string::npos) << unknown.err;
}

TEST_F(TokenStoreTest, ExpiredTokensAreRefused) {
  std::string t = new_token("short", {"plates:r"}, "1h");
  auto store = TokenStore::load(store_path());
  ASSERT_TRUE(store);
  const TokenRecord& rec = store->tokens()[0];
  EXPECT_EQ(rec.expires - rec.created, 3600);
  EXPECT_TRUE(store->verify(t, rec.created + 3599));
  auto expired = store->verify(t, rec.created + 3600);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.status().code(), Error::kRefused);
  EXPECT_NE(expired.status().message().find("expired at"), std::string::npos) << expired.status().message();

  // A token without --expires never expires.
  std::string forever = new_token("forever", {"plates:r"});
  store = TokenStore::load(store_path());
  EXPECT_TRUE(store->verify(forever, int64_t{4'000'000'000}));
}

TEST_F(TokenStoreTest, VerifierRefusesWrongMissingAndOverlongTokens) {
  std::string t = new_token("alice", {"plates:rw"});
  auto verifier = make_token_verifier(store_path());
  std::string wrong = t;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  for (const std::string& bad : {wrong, std::string(), std::string("ferry_"), t + "x", std::string(10000, 'a')}) {
    auto r = verifier(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.status().code(), Error::kRefused);
  }
  EXPECT_EQ(verifier("").status().message(), "no token given");
  EXPECT_EQ(verifier(wrong).status().message(), "unknown token");
}

TEST_F(TokenStoreTest, BrokenStoreFailsClosedUntilFixed) {
  std::string t = new_token("alice", {"plates:rw"});
  auto verifier = make_token_verifier(store_path());
  ASSERT_TRUE(verifier(t));
  std::string good = test::read_text(store_path());
  test::write_text(store_path(), good + "\n[[token]]\nid = 3\n");
  auto r = verifier(t);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), Error::kRefused);
  test::write_text(store_path(), good + "\n");  // a different size: seen as a change
  EXPECT_TRUE(verifier(t));
}

TEST_F(TokenStoreTest, CliRejectsBadGrantsNamesAndExpiry) {
  auto run = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {FERRYD_BINARY, "token", "new", "--config", layout_.config_path};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_command(args);
  };
  auto r = run({"--name", "x", "--grant", "nosuch:rw"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no export 'nosuch'"), std::string::npos) << r.err;
  r = run({"--name", "x", "--grant", "plates:x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown mode 'x'"), std::string::npos) << r.err;
  r = run({"--name", "a b", "--grant", "plates:r"});
  EXPECT_EQ(r.exit_code, 2);
  r = run({"--name", "x", "--grant", "plates:r", "--expires", "soon"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--expires: invalid duration 'soon'"), std::string::npos) << r.err;
  new_token("dup", {"plates:r"});
  r = run({"--name", "dup", "--grant", "plates:r"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
  // None of the failures wrote anything: one token in the store.
  auto store = TokenStore::load(store_path());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->tokens().size(), 1u);
}

// `ferryd token new` read-modify-writes the store under a lock: concurrent runs lose nothing.
TEST_F(TokenStoreTest, ConcurrentCommandsLoseNoToken) {
  std::vector<std::thread> runs;
  std::vector<std::string> tokens(8);
  for (int i = 0; i < 8; ++i)
    runs.emplace_back([&, i] { tokens[i] = new_token("job" + std::to_string(i), {"plates:w"}); });
  for (auto& t : runs) t.join();
  auto store = TokenStore::load(store_path());
  ASSERT_TRUE(store) << store.status().message();
  EXPECT_EQ(store->tokens().size(), 8u);
  for (const auto& t : tokens) EXPECT_TRUE(store->verify(t, static_cast<int64_t>(time(nullptr)))) << t;
}

TEST(TokenGrantTest, ParsesModes) {
  EXPECT_TRUE(parse_grant("plates:rw")->write);
  EXPECT_TRUE(parse_grant("plates:r")->read);
  EXPECT_FALSE(parse_grant("plates:r")->write);
  EXPECT_EQ(to_string(*parse_grant("a.b_c-d:w")), "a.b_c-d:w");
  for (const char* bad : {"plates", ":rw", "plates:", "plates:rx", "../x:r", "a/b:r"}) EXPECT_FALSE(parse_grant(bad)) << bad;
}

}  // namespace
}  // namespace ferry::daemon
