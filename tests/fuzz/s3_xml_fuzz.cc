// libFuzzer target: the S3 XML reader (s3/xml.cc) and every typed response parser on top of
// it (s3/s3_responses.cc), fed what a hostile or broken S3 endpoint could send.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "s3/s3_responses.h"
#include "s3/xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::s3;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view what = "fuzz response";
  // Small limits too, so the depth and element caps are reached by small inputs.
  (void)parse_xml(body, what, XmlLimits{.max_bytes = 4096, .max_depth = 4, .max_elements = 16});
  auto root = parse_xml(body, what);
  S3ErrorBody error;
  bool is_error = parse_error_body(body, &error);
  if (!root) FUZZ_CHECK(!is_error);  // an error body is a well-formed document
  (void)parse_initiate_multipart(body, what);
  (void)parse_list_parts(body, what);
  (void)parse_list_uploads(body, what);
  (void)parse_list_objects_v2(body, what);
  (void)parse_complete_multipart(body, what);
  if (root) {
    // The timestamp parser takes any text an element holds.
    (void)parse_iso8601_utc(root->text);
    (void)parse_iso8601_utc(root->child_text("Initiated"));
    (void)strip_quotes(root->child_text("ETag"));
  }
  return 0;
}
