#include "registry/validation.h"

#include <gtest/gtest.h>

namespace nimbus::registry {
namespace {

using base::ErrorCode;

ErrorCode code_of(const base::Status& s) { return s.ok() ? ErrorCode::kService : s.error().code; }

TEST(Validation, Names) {
  EXPECT_TRUE(validate_name("my-function_1").ok());
  EXPECT_EQ(code_of(validate_name("")), ErrorCode::kValidation);
  EXPECT_EQ(code_of(validate_name(std::string(65, 'a'))), ErrorCode::kValidation);
  auto bad = validate_name("no spaces");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("functionName"), std::string::npos);
}

TEST(Validation, RuntimesListSupportedOnes) {
  EXPECT_TRUE(validate_runtime("python3.12").ok());
  EXPECT_TRUE(validate_runtime("provided.al2023").ok());
  auto bad = validate_runtime("cobol85");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidParameterValue);
  EXPECT_NE(bad.error().message.find("cobol85"), std::string::npos);
  EXPECT_NE(bad.error().message.find("nodejs20.x"), std::string::npos);
}

TEST(Validation, Handlers) {
  EXPECT_TRUE(validate_handler("app.handler", "python3.12").ok());
  EXPECT_TRUE(validate_handler("src/app.main.handler", "nodejs20.x").ok());
  EXPECT_TRUE(validate_handler("anything", "provided.al2").ok());
  EXPECT_FALSE(validate_handler("nodot", "python3.12").ok());
  EXPECT_FALSE(validate_handler("app.", "python3.12").ok());
  EXPECT_FALSE(validate_handler("has space.x", "python3.12").ok());
  EXPECT_FALSE(validate_handler("", "python3.12").ok());
  EXPECT_FALSE(validate_handler(std::string(129, 'a') + ".b", "python3.12").ok());
}

TEST(Validation, RangesNameTheMember) {
  EXPECT_TRUE(validate_timeout(900).ok());
  auto t = validate_timeout(901);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("'timeout'"), std::string::npos);
  EXPECT_NE(t.error().message.find("less than or equal to 900"), std::string::npos);
  EXPECT_FALSE(validate_timeout(0).ok());
  EXPECT_TRUE(validate_memory_size(128).ok());
  EXPECT_TRUE(validate_memory_size(10240).ok());
  EXPECT_FALSE(validate_memory_size(127).ok());
  EXPECT_FALSE(validate_memory_size(10241).ok());
  EXPECT_FALSE(validate_ephemeral_storage(511).ok());
}

TEST(Validation, Environment) {
  EXPECT_TRUE(validate_environment({{"GREETING", "hi"}, {"A1", "x"}}).ok());
  EXPECT_FALSE(validate_environment({{"1A", "x"}}).ok());
  EXPECT_FALSE(validate_environment({{"A-B", "x"}}).ok());
  auto reserved = validate_environment({{"AWS_REGION", "x"}});
  ASSERT_FALSE(reserved.ok());
  EXPECT_NE(reserved.error().message.find("AWS_REGION"), std::string::npos);
  auto big = validate_environment({{"BIG", std::string(4100, 'x')}});
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("4KB"), std::string::npos);
}

TEST(Validation, RoleArchitecturesTags) {
  EXPECT_TRUE(validate_role("arn:aws:iam::123456789012:role/lambda").ok());
  EXPECT_FALSE(validate_role("lambda-role").ok());
  EXPECT_TRUE(validate_architectures({"arm64"}).ok());
  EXPECT_FALSE(validate_architectures({"x86_64", "arm64"}).ok());
  EXPECT_FALSE(validate_architectures({"mips"}).ok());
  Tags many;
  for (int i = 0; i < 51; ++i) many["k" + std::to_string(i)] = "v";
  EXPECT_FALSE(validate_tags(many).ok());
  EXPECT_FALSE(validate_tags({{"aws:x", "v"}}).ok());
}

TEST(FunctionRef, ParsesEveryForm) {
  auto r = [](std::string_view s) { return parse_function_ref(s, "us-east-1", "000000000000"); };
  EXPECT_EQ(r("f")->name, "f");
  EXPECT_EQ(r("f:prod")->qualifier, "prod");
  EXPECT_EQ(r("f:$LATEST")->qualifier, "$LATEST");
  EXPECT_EQ(r("000000000000:function:f")->name, "f");
  EXPECT_EQ(r("000000000000:function:f:3")->qualifier, "3");
  auto full = r("arn:aws:lambda:us-east-1:000000000000:function:f:live");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->name, "f");
  EXPECT_EQ(full->qualifier, "live");
  EXPECT_TRUE(r("arn:aws:lambda:us-east-1:000000000000:function:f")->qualifier.empty());
}

TEST(FunctionRef, RejectsForeignAndMalformed) {
  auto r = [](std::string_view s) { return parse_function_ref(s, "us-east-1", "000000000000"); };
  EXPECT_EQ(r("arn:aws:lambda:eu-west-1:000000000000:function:f").error().code, ErrorCode::kResourceNotFound);
  EXPECT_EQ(r("arn:aws:lambda:us-east-1:111111111111:function:f").error().code, ErrorCode::kAccessDenied);
  EXPECT_EQ(r("").error().code, ErrorCode::kValidation);
  EXPECT_EQ(r("f:").error().code, ErrorCode::kValidation);
  EXPECT_EQ(r("a b").error().code, ErrorCode::kValidation);
  EXPECT_EQ(r("a:b:c").error().code, ErrorCode::kValidation);
}

}  // namespace
}  // namespace nimbus::registry
