// Bearer tokens: format of generated tokens, base64url against RFC 4648 vectors, comparison.
#include "crypto/bearer_token.h"

#include <gtest/gtest.h>

#include <set>

namespace ferry {
namespace {

TEST(BearerToken, GeneratedTokensAre128RandomBitsInBase64Url) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto t = generate_token(16);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->size(), 22u);
    EXPECT_EQ(t->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos)
        << *t;
    seen.insert(*t);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(BearerToken, Base64UrlMatchesRfc4648WithoutPadding) {
  auto enc = [](const std::string& s) { return base64url(reinterpret_cast<const uint8_t*>(s.data()), s.size()); };
  EXPECT_EQ(enc(""), "");
  EXPECT_EQ(enc("f"), "Zg");
  EXPECT_EQ(enc("fo"), "Zm8");
  EXPECT_EQ(enc("foo"), "Zm9v");
  EXPECT_EQ(enc("foob"), "Zm9vYg");
  EXPECT_EQ(enc("fooba"), "Zm9vYmE");
  EXPECT_EQ(enc("foobar"), "Zm9vYmFy");
  const uint8_t high[] = {0xfb, 0xff};
  EXPECT_EQ(base64url(high, 2), "-_8");  // the URL-safe alphabet, not '+' and '/'
}

TEST(BearerToken, ComparisonMatchesOnlyTheSameToken) {
  TokenDigest d = token_digest("secret-token");
  EXPECT_TRUE(tokens_equal("secret-token", d));
  EXPECT_FALSE(tokens_equal("secret-tokeN", d));
  EXPECT_FALSE(tokens_equal("secret-token ", d));
  EXPECT_FALSE(tokens_equal("", d));
  EXPECT_TRUE(digests_equal(d, token_digest("secret-token")));
}

}  // namespace
}  // namespace ferry
