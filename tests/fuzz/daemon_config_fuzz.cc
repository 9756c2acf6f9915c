// libFuzzer target: ferryd's config parser (daemon/toml_subset.cc + config_from_toml in
// daemon/config.cc). Input: the text of a ferryd.toml. Validation only reads the file system
// (stat of the named paths), so arbitrary configs are harmless to evaluate.
// Property (documented in config.h): a config that loads writes back with to_toml() into a
// text that loads to the same config.
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <string_view>

#include "daemon/config.h"
#include "daemon/toml_subset.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::daemon;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = parse_toml(text, "fuzz.toml");
  if (!doc) return 0;
  auto config = config_from_toml(*doc);
  if (!config) return 0;
  std::string canonical = to_toml(*config);
  auto doc2 = parse_toml(canonical, "fuzz.toml");
  if (!doc2) std::fprintf(stderr, "to_toml wrote:\n%s\nerror: %s\n", canonical.c_str(), doc2.status().message().c_str());
  FUZZ_CHECK(doc2.is_ok());
  auto config2 = config_from_toml(*doc2);
  if (!config2) std::fprintf(stderr, "to_toml wrote:\n%s\nerror: %s\n", canonical.c_str(), config2.status().message().c_str());
  FUZZ_CHECK(config2.is_ok());
  FUZZ_CHECK(*config2 == *config);
  return 0;
}
