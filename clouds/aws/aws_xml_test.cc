#include "clouds/aws/aws_xml.h"

#include <gtest/gtest.h>

namespace ch {
namespace {

TEST(AwsXmlTest, MalformedAndEmptyAnswersNameTheCall) {
  pugi::xml_document doc;
  Status s = parse_aws_xml("<a><b></a>", doc, "EC2 DescribeImages (us-east-1)");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("EC2 DescribeImages (us-east-1): malformed XML in the response: ", 0), 0u)
      << s.message();
  EXPECT_NE(s.message().find(" at offset "), std::string::npos) << s.message();
  EXPECT_EQ(parse_aws_xml("", doc, "S3 ListParts").message(),
            "S3 ListParts: malformed XML in the response: No document element found at offset 0");
}

TEST(AwsXmlTest, MatchesElementsByLocalName) {
  // The default namespace (AWS), a prefixed one (some S3-compatible
  // servers) and none (emulators) read alike.
  for (const char* body :
       {"<ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part><PartNumber>1</PartNumber>"
        "</Part><Other/><Part><PartNumber>2</PartNumber></Part><Key> a key </Key></ListPartsResult>",
        "<s3:ListPartsResult xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\"><s3:Part><s3:PartNumber>1"
        "</s3:PartNumber></s3:Part><s3:Other/><s3:Part><s3:PartNumber>2</s3:PartNumber></s3:Part>"
        "<s3:Key> a key </s3:Key></s3:ListPartsResult>",
        "<ListPartsResult><Part><PartNumber>1</PartNumber></Part><Other/><Part><PartNumber>2</PartNumber>"
        "</Part><Key> a key </Key></ListPartsResult>"}) {
    pugi::xml_document doc;
    ASSERT_TRUE(parse_aws_xml(body, doc, "test").ok()) << body;
    pugi::xml_node root = xml_root(doc);
    EXPECT_TRUE(xml_is(root, "ListPartsResult")) << body;
    std::vector<pugi::xml_node> parts = xml_children(root, "Part");
    ASSERT_EQ(parts.size(), 2u) << body;
    EXPECT_EQ(xml_child_text(parts[1], "PartNumber"), "2");
    EXPECT_TRUE(xml_is(xml_child(root, "Other"), "Other"));
    EXPECT_EQ(xml_child_text(root, "Key"), " a key ");  // as is: keys may have spaces
    EXPECT_EQ(xml_child_text(root, "Absent"), "");
    EXPECT_FALSE(xml_child(root, "Absent"));
    EXPECT_TRUE(xml_children(xml_child(root, "Absent"), "Part").empty());
  }
}

TEST(AwsXmlTest, EscapesTextAndAttributeValues) {
  EXPECT_EQ(xml_escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  EXPECT_EQ(xml_escape("eu-west-2"), "eu-west-2");
}

}  // namespace
}  // namespace ch
