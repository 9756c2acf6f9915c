// The XML reader and the typed S3 responses: documents shaped like AWS's documented
// responses, and hostile input (deep nesting, entity tricks, truncation, oversize).
#include "s3/xml.h"

#include <gtest/gtest.h>

#include "s3/s3_responses.h"

namespace ferry::s3 {
namespace {

TEST(Xml, ParsesElementsTextEntitiesAndCdata) {
  auto doc = parse_xml("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c --><A x=\"1>2\" y='q'><B>a &amp; b &lt;&#x41;&#66;&gt;</B>"
                       "<C/><D><![CDATA[<raw>&amp;]]></D></A>",
                       "test");
  ASSERT_TRUE(doc) << doc.status().message();
  EXPECT_EQ(doc->name, "A");
  EXPECT_EQ(doc->child_text("B"), "a & b <AB>");
  ASSERT_NE(doc->child("C"), nullptr);
  EXPECT_EQ(doc->child_text("D"), "<raw>&amp;");
  EXPECT_EQ(doc->child("E"), nullptr);
}

TEST(Xml, RejectsMalformedDocumentsWithTheOffset) {
  for (const char* bad : {"", "text", "<a>", "<a></b>", "<a><b></a></b>", "<a>&bogus;</a>", "<a>&#0;</a>",
                          "<a>&#xD800;</a>", "<a>&#1114112;</a>", "<a x=1></a>", "<a></a><b></b>", "<a><!-- x</a>",
                          "<a><![CDATA[x</a>", "<a x=\"1></a>"}) {
    auto doc = parse_xml(bad, "hostile body");
    EXPECT_FALSE(doc) << "accepted: " << bad;
    if (!doc) {
      EXPECT_EQ(doc.status().code(), Error::kProtocol);
      EXPECT_NE(doc.status().message().find("hostile body at byte"), std::string::npos) << doc.status().message();
    }
  }
}

TEST(Xml, RefusesDoctypeSoNoEntityExpansionIsPossible) {
  auto doc = parse_xml("<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><a>&lol2;</a>", "t");
  ASSERT_FALSE(doc);
  EXPECT_NE(doc.status().message().find("DOCTYPE"), std::string::npos);
}

TEST(Xml, DepthElementCountAndSizeAreBounded) {
  std::string deep;
  for (int i = 0; i < 100'000; ++i) deep += "<a>";  // would overflow the stack if unbounded
  auto d = parse_xml(deep, "t");
  ASSERT_FALSE(d);
  EXPECT_NE(d.status().message().find("nesting deeper"), std::string::npos);

  std::string many = "<r>";
  for (int i = 0; i < 1000; ++i) many += "<x/>";
  many += "</r>";
  XmlLimits small;
  small.max_elements = 500;
  EXPECT_FALSE(parse_xml(many, "t", small));
  EXPECT_TRUE(parse_xml(many, "t"));
  small = XmlLimits{};
  small.max_bytes = 100;
  EXPECT_FALSE(parse_xml(many, "t", small));
}

TEST(Xml, EscapeRoundTrips) {
  std::string s = "a<b>&\"c'";
  auto doc = parse_xml("<a>" + xml_escape(s) + "</a>", "t");
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->text, s);
}

TEST(S3Responses, ErrorBody) {
  S3ErrorBody e;
  ASSERT_TRUE(parse_error_body("<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message>"
                               "<RequestId>1</RequestId></Error>", &e));
  EXPECT_EQ(e.code, "SlowDown");
  EXPECT_EQ(e.message, "Reduce your request rate.");
  EXPECT_FALSE(parse_error_body("<NotError/>", &e));
  EXPECT_FALSE(parse_error_body("garbage", &e));
}

TEST(S3Responses, InitiateMultipartUpload) {
  auto id = parse_initiate_multipart(
      "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n  <Bucket>b</Bucket>\n"
      "  <Key>k</Key>\n  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>\n"
      "</InitiateMultipartUploadResult>", "t");
  ASSERT_TRUE(id) << id.status().message();
  EXPECT_EQ(*id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
  EXPECT_FALSE(parse_initiate_multipart("<InitiateMultipartUploadResult/>", "t"));
  EXPECT_FALSE(parse_initiate_multipart("<Other><UploadId>x</UploadId></Other>", "t"));
}

TEST(S3Responses, ListPartsWithPaging) {
  auto p = parse_list_parts(
      "<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId><PartNumberMarker>1</PartNumberMarker>"
      "<NextPartNumberMarker>3</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>"
      "<Part><PartNumber>2</PartNumber><LastModified>2010-11-10T20:48:34.000Z</LastModified>"
      "<ETag>&quot;7778aef83f66abc1fa1e8477f296d394&quot;</ETag><Size>10485760</Size></Part>"
      "<Part><PartNumber>3</PartNumber><ETag>\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"</ETag><Size>10485760</Size></Part>"
      "</ListPartsResult>", "t");
  ASSERT_TRUE(p) << p.status().message();
  EXPECT_TRUE(p->truncated);
  EXPECT_EQ(p->next_marker, 3u);
  ASSERT_EQ(p->parts.size(), 2u);
  EXPECT_EQ(p->parts[0].number, 2u);
  EXPECT_EQ(p->parts[0].etag, "7778aef83f66abc1fa1e8477f296d394");
  EXPECT_EQ(p->parts[1].size, 10485760u);
  EXPECT_FALSE(parse_list_parts("<ListPartsResult><Part><PartNumber>0</PartNumber></Part></ListPartsResult>", "t"));
  EXPECT_FALSE(parse_list_parts("<ListPartsResult><Part><PartNumber>10001</PartNumber></Part></ListPartsResult>", "t"));
  EXPECT_FALSE(parse_list_parts("<ListPartsResult><IsTruncated>true</IsTruncated></ListPartsResult>", "t"));
}

TEST(S3Responses, ListMultipartUploads) {
  auto u = parse_list_uploads(
      "<ListMultipartUploadsResult><Bucket>bucket</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
      "<NextKeyMarker>my-movie.m2ts</NextKeyMarker><NextUploadIdMarker>YW55IGlkZWEgd2h5</NextUploadIdMarker>"
      "<MaxUploads>3</MaxUploads><IsTruncated>true</IsTruncated>"
      "<Upload><Key>my divisor</Key><UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId>"
      "<Initiator><ID>x</ID></Initiator><StorageClass>STANDARD</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload>"
      "</ListMultipartUploadsResult>", "t");
  ASSERT_TRUE(u) << u.status().message();
  ASSERT_EQ(u->uploads.size(), 1u);
  EXPECT_EQ(u->uploads[0].key, "my divisor");
  EXPECT_EQ(u->uploads[0].initiated_unix, 1289422113);
  EXPECT_EQ(u->next_key_marker, "my-movie.m2ts");
  EXPECT_EQ(u->next_upload_id_marker, "YW55IGlkZWEgd2h5");
}

TEST(S3Responses, ListObjectsV2KeepsBlanksInKeys) {
  auto o = parse_list_objects_v2(
      "<ListBucketResult><Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><IsTruncated>false</IsTruncated>"
      "<Contents><Key>p/ a </Key><Size>5</Size><ETag>\"e1\"</ETag></Contents>"
      "<Contents><Key>p/b&amp;c</Key><Size>0</Size><ETag>\"e2-3\"</ETag></Contents></ListBucketResult>", "t");
  ASSERT_TRUE(o) << o.status().message();
  ASSERT_EQ(o->objects.size(), 2u);
  EXPECT_EQ(o->objects[0].key, "p/ a ");
  EXPECT_EQ(o->objects[1].key, "p/b&c");
  EXPECT_EQ(o->objects[1].etag, "e2-3");
  EXPECT_FALSE(parse_list_objects_v2("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>", "t"));
  EXPECT_FALSE(parse_list_objects_v2("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", "t"));
}

TEST(S3Responses, CompleteCanBeAnErrorInsideA200) {
  auto ok = parse_complete_multipart("<CompleteMultipartUploadResult><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag></CompleteMultipartUploadResult>", "t");
  ASSERT_TRUE(ok);
  EXPECT_FALSE(ok->is_error);
  EXPECT_EQ(ok->etag, "3858f62230ac3c915f300c664312c11f-9");
  auto err = parse_complete_multipart("\n\n<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>", "t");
  ASSERT_TRUE(err);
  EXPECT_TRUE(err->is_error);
  EXPECT_EQ(err->error.code, "InternalError");
}

}  // namespace
}  // namespace ferry::s3
