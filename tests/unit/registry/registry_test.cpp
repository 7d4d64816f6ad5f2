#include "registry/registry.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "base/crypto.h"
#include "store/sqlite_store.h"

namespace nimbus::registry {
namespace {

using base::ErrorCode;

// A zip holding one file.
std::string make_zip(const std::string& name, const std::string& content) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  archive_write_open2(
      a, &out, nullptr,
      [](archive*, void* c, const void* b, size_t n) -> la_ssize_t {
        static_cast<std::string*>(c)->append(static_cast<const char*>(b), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr, nullptr);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
  archive_write_header(a, e);
  archive_write_data(a, content.data(), content.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("nimbus-registry-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = std::make_unique<store::SqliteStore>(dir_ / "n.db");
    ASSERT_TRUE(store_->open().ok());
    blobs_ = std::make_unique<store::BlobStore>(dir_);
    ASSERT_TRUE(blobs_->open().ok());
    registry_ = std::make_unique<Registry>(*store_, *blobs_, clock_, RegistryConfig{});
  }
  void TearDown() override {
    registry_.reset();
    blobs_.reset();
    store_.reset();
    std::error_code ec;
    // Unpacked code is read-only; make it removable.
    for (auto& p : std::filesystem::recursive_directory_iterator(dir_, ec)) {
      std::filesystem::permissions(p.path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::add, ec);
    }
    std::filesystem::remove_all(dir_, ec);
  }

  FunctionSpec spec(const std::string& name, const std::string& code = "def handler(e, c): return 1\n") {
    FunctionSpec s;
    s.name = name;
    s.runtime = "python3.12";
    s.role = "arn:aws:iam::000000000000:role/r";
    s.handler = "app.handler";
    s.zip = make_zip("app.py", code);
    return s;
  }

  std::filesystem::path dir_;
  base::ManualClock clock_{1700000000000};
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<store::BlobStore> blobs_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryTest, CreateFillsLambdaFields) {
  FunctionSpec s = spec("hello");
  const std::string zip = s.zip;
  auto created = registry_->create(std::move(s));
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(created->timeout, 3);
  EXPECT_EQ(created->memory_size, 128);
  EXPECT_EQ(created->code_size, static_cast<std::int64_t>(zip.size()));
  EXPECT_EQ(created->code_sha256, base::base64_encode(base::as_bytes(base::sha256(zip))));
  EXPECT_EQ(created->last_modified_ms, 1700000000000);
  EXPECT_EQ(created->revision_id.size(), 36u);
  EXPECT_EQ(registry_->function_arn("hello"), "arn:aws:lambda:us-east-1:000000000000:function:hello");
  auto dir = registry_->code_directory("hello");
  ASSERT_TRUE(dir.ok());
  EXPECT_TRUE(std::filesystem::exists(*dir / "app.py"));
}

TEST_F(RegistryTest, DuplicateNameConflicts) {
  ASSERT_TRUE(registry_->create(spec("a")).ok());
  auto again = registry_->create(spec("a"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kResourceConflict);
}

TEST_F(RegistryTest, BadInputLeavesNothingBehind) {
  FunctionSpec corrupt = spec("broken");
  corrupt.zip = "not a zip at all";
  auto r = registry_->create(std::move(corrupt));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidParameterValue);
  FunctionSpec slow = spec("slow");
  slow.timeout = 901;
  EXPECT_EQ(registry_->create(std::move(slow)).error().code, ErrorCode::kValidation);
  EXPECT_EQ(registry_->usage()->function_count, 0);
  EXPECT_EQ(registry_->get("broken").error().code, ErrorCode::kResourceNotFound);
}

TEST_F(RegistryTest, UpdateConfigurationChangesRevisionAndChecksIt) {
  auto created = registry_->create(spec("f"));
  ASSERT_TRUE(created.ok());
  clock_.advance_ms(1000);
  ConfigPatch p;
  p.timeout = 30;
  p.environment = EnvVars{{"GREETING", "hi"}};
  auto updated = registry_->update_configuration("f", p);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->timeout, 30);
  EXPECT_EQ(updated->environment.at("GREETING"), "hi");
  EXPECT_NE(updated->revision_id, created->revision_id);
  EXPECT_EQ(updated->last_modified_ms, 1700000001000);

  ConfigPatch stale;
  stale.revision_id = created->revision_id;
  stale.memory_size = 256;
  EXPECT_EQ(registry_->update_configuration("f", stale).error().code, ErrorCode::kPreconditionFailed);

  ConfigPatch invalid;
  invalid.memory_size = 64;
  EXPECT_EQ(registry_->update_configuration("f", invalid).error().code, ErrorCode::kValidation);
  EXPECT_EQ(registry_->get("f")->memory_size, 128);  // unchanged
}

TEST_F(RegistryTest, UpdateCodeReplacesAndCollectsOldBlob) {
  ASSERT_TRUE(registry_->create(spec("f", "v1")).ok());
  const auto old_hex = registry_->get("f")->code_sha256_hex;
  auto updated = registry_->update_code("f", make_zip("app.py", "v2"), std::nullopt);
  ASSERT_TRUE(updated.ok());
  EXPECT_NE(updated->code_sha256_hex, old_hex);
  EXPECT_FALSE(blobs_->contains(*base::digest_from_hex(old_hex)));
  EXPECT_TRUE(blobs_->contains(*base::digest_from_hex(updated->code_sha256_hex)));
}

TEST_F(RegistryTest, SharedCodeSurvivesDeleteOfOneFunction) {
  ASSERT_TRUE(registry_->create(spec("a", "same")).ok());
  ASSERT_TRUE(registry_->create(spec("b", "same")).ok());
  const auto hex = registry_->get("a")->code_sha256_hex;
  ASSERT_TRUE(registry_->remove("a").ok());
  EXPECT_TRUE(blobs_->contains(*base::digest_from_hex(hex)));
  ASSERT_TRUE(registry_->remove("b").ok());
  EXPECT_FALSE(blobs_->contains(*base::digest_from_hex(hex)));
  EXPECT_EQ(registry_->remove("b").error().code, ErrorCode::kResourceNotFound);
}

TEST_F(RegistryTest, ListPagesThroughEverything) {
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(registry_->create(spec("f" + std::to_string(i))).ok());
  std::vector<std::string> seen;
  std::string marker;
  int pages = 0;
  do {
    auto page = registry_->list(marker, 3);
    ASSERT_TRUE(page.ok());
    for (const auto& f : page->functions) seen.push_back(f.name);
    marker = page->next_marker;
    ++pages;
  } while (!marker.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"f0", "f1", "f2", "f3", "f4", "f5", "f6"}));
}

TEST_F(RegistryTest, TagsMergeAndRemove) {
  ASSERT_TRUE(registry_->create(spec("t")).ok());
  ASSERT_TRUE(registry_->tag("t", {{"a", "1"}, {"b", "2"}}).ok());
  ASSERT_TRUE(registry_->untag("t", {"a"}).ok());
  EXPECT_EQ(registry_->get("t")->tags, (Tags{{"b", "2"}}));
  EXPECT_EQ(registry_->tag("missing", {{"a", "1"}}).error().code, ErrorCode::kResourceNotFound);
}

TEST_F(RegistryTest, PublishSnapshotsLatestAndReusesAnUnchangedVersion) {
  ASSERT_TRUE(registry_->create(spec("f")).ok());
  auto v1 = registry_->publish_version("f", PublishSpec{});
  ASSERT_TRUE(v1.ok()) << v1.error().message;
  EXPECT_EQ(v1->version, "1");
  // Nothing changed: the same version comes back.
  auto again = registry_->publish_version("f", PublishSpec{});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->version, "1");
  EXPECT_EQ(again->revision_id, v1->revision_id);

  ConfigPatch patch;
  patch.timeout = 30;
  ASSERT_TRUE(registry_->update_configuration("f", patch).ok());
  PublishSpec wrong_code;
  wrong_code.code_sha256 = "bm9wZQ==";
  auto refused = registry_->publish_version("f", wrong_code);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidParameterValue);
  EXPECT_NE(refused.error().message.find("is different from current CodeSHA256 in $LATEST"), std::string::npos);
  PublishSpec described;
  described.description = "second";
  auto v2 = registry_->publish_version("f", described);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->version, "2");
  EXPECT_EQ(v2->timeout, 30);
  EXPECT_EQ(v2->description, "second");

  // Versions are frozen: a later change to $LATEST does not reach them.
  patch.timeout = 60;
  ASSERT_TRUE(registry_->update_configuration("f", patch).ok());
  EXPECT_EQ(registry_->get_qualified("f", "1")->timeout, 3);
  EXPECT_EQ(registry_->get_qualified("f", "2")->timeout, 30);
  EXPECT_EQ(registry_->get_qualified("f", "$LATEST")->timeout, 60);
  auto missing = registry_->get_qualified("f", "3");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "Function not found: arn:aws:lambda:us-east-1:000000000000:function:f:3");

  auto page = registry_->list_versions("f", "", 2);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->functions.size(), 2u);
  EXPECT_EQ(page->functions[0].version, "$LATEST");
  EXPECT_EQ(page->next_marker, "1");
  auto rest = registry_->list_versions("f", page->next_marker, 2);
  ASSERT_EQ(rest->functions.size(), 1u);
  EXPECT_EQ(rest->functions[0].version, "2");
  EXPECT_TRUE(rest->next_marker.empty());
}

TEST_F(RegistryTest, VersionNumbersAreNeverReused) {
  ASSERT_TRUE(registry_->create(spec("f")).ok());
  ASSERT_TRUE(registry_->publish_version("f", PublishSpec{}).ok());
  ASSERT_TRUE(registry_->delete_version("f", "1").ok());
  ASSERT_TRUE(registry_->update_code("f", make_zip("app.py", "def handler(e, c): return 2\n"), std::nullopt).ok());
  auto v = registry_->publish_version("f", PublishSpec{});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, "2");
}

TEST_F(RegistryTest, AliasesRouteToVersionsWithWeights) {
  ASSERT_TRUE(registry_->create(spec("f")).ok());
  ASSERT_TRUE(registry_->publish_version("f", PublishSpec{}).ok());
  ASSERT_TRUE(registry_->update_code("f", make_zip("app.py", "def handler(e, c): return 2\n"), std::nullopt).ok());
  ASSERT_TRUE(registry_->publish_version("f", PublishSpec{}).ok());

  AliasSpec live;
  live.name = "live";
  live.function_version = "1";
  live.additional_weights = std::map<std::string, double>{{"2", 0.25}};
  auto created = registry_->create_alias("f", live);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(registry_->create_alias("f", live).error().code, ErrorCode::kResourceConflict);
  EXPECT_EQ(registry_->select_version("f", "live", 0.1)->version, "2");
  EXPECT_EQ(registry_->select_version("f", "live", 0.3)->version, "1");
  EXPECT_EQ(registry_->get_qualified("f", "live")->version, "1");

  // Lambda's routing rules.
  AliasSpec bad = live;
  bad.name = "bad";
  bad.additional_weights = std::map<std::string, double>{{"1", 0.5}};
  EXPECT_NE(registry_->create_alias("f", bad).error().message.find("already included in routing"), std::string::npos);
  bad.function_version = "$LATEST";
  bad.additional_weights = std::map<std::string, double>{{"2", 0.5}};
  EXPECT_NE(registry_->create_alias("f", bad).error().message.find("$LATEST is not supported"), std::string::npos);
  bad.function_version = "1";
  bad.additional_weights = std::map<std::string, double>{{"2", 1.5}};
  EXPECT_EQ(registry_->create_alias("f", bad).error().code, ErrorCode::kValidation);
  bad.additional_weights = std::map<std::string, double>{{"9", 0.5}};
  EXPECT_EQ(registry_->create_alias("f", bad).error().code, ErrorCode::kResourceNotFound);
  bad.name = "123";
  EXPECT_EQ(registry_->create_alias("f", bad).error().code, ErrorCode::kValidation);

  // A version in use by an alias stays.
  auto in_use = registry_->delete_version("f", "2");
  ASSERT_FALSE(in_use.ok());
  EXPECT_EQ(in_use.error().code, ErrorCode::kResourceConflict);
  EXPECT_NE(in_use.error().message.find("[live]"), std::string::npos);

  AliasSpec move;
  move.name = "live";
  move.function_version = "2";
  move.additional_weights = std::map<std::string, double>{};
  move.revision_id = "stale";
  EXPECT_EQ(registry_->update_alias("f", move).error().code, ErrorCode::kPreconditionFailed);
  move.revision_id = created->revision_id;
  auto moved = registry_->update_alias("f", move);
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_EQ(registry_->select_version("f", "live", 0.0)->version, "2");
  EXPECT_TRUE(registry_->delete_version("f", "1").ok());

  auto listed = registry_->list_aliases("f", "2", "", 10);
  ASSERT_EQ(listed->aliases.size(), 1u);
  EXPECT_TRUE(registry_->list_aliases("f", "1", "", 10)->aliases.empty());
  ASSERT_TRUE(registry_->delete_alias("f", "live").ok());
  EXPECT_EQ(registry_->get_alias("f", "live").error().message,
            "Cannot find alias arn: arn:aws:lambda:us-east-1:000000000000:function:f:live");
}

TEST_F(RegistryTest, ProvisionedConcurrencyNeedsAPublishedTargetAndSurvivesRestart) {
  ASSERT_TRUE(registry_->create(spec("f")).ok());
  EXPECT_EQ(registry_->put_provisioned("f", "$LATEST", 2).error().code, ErrorCode::kInvalidParameterValue);
  EXPECT_EQ(registry_->put_provisioned("f", "1", 2).error().code, ErrorCode::kResourceNotFound);
  ASSERT_TRUE(registry_->publish_version("f", PublishSpec{}).ok());
  EXPECT_EQ(registry_->put_provisioned("f", "1", 0).error().code, ErrorCode::kValidation);
  EXPECT_EQ(registry_->get_provisioned("f", "1").error().code, ErrorCode::kProvisionedConfigNotFound);
  ASSERT_TRUE(registry_->put_provisioned("f", "1", 2).ok());
  ASSERT_TRUE(registry_->set_reserved_concurrency("f", 3).ok());
  AliasSpec live;
  live.name = "live";
  live.function_version = "1";
  ASSERT_TRUE(registry_->create_alias("f", live).ok());
  // 2 + 2 > reserved 3.
  EXPECT_EQ(registry_->put_provisioned("f", "live", 2).error().code, ErrorCode::kInvalidParameterValue);

  registry_ = std::make_unique<Registry>(*store_, *blobs_, clock_, RegistryConfig{});
  auto all = registry_->provisioned_all();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].qualifier, "1");
  EXPECT_EQ(all[0].requested, 2);
  ASSERT_TRUE(registry_->delete_provisioned("f", "1").ok());
  EXPECT_TRUE(registry_->delete_provisioned("f", "1").ok());  // none: still fine
  EXPECT_TRUE(registry_->provisioned_all().empty());
}

TEST_F(RegistryTest, DeletingAFunctionTakesItsVersionsAliasesAndCode) {
  ASSERT_TRUE(registry_->create(spec("f")).ok());
  auto v1 = registry_->publish_version("f", PublishSpec{});
  ASSERT_TRUE(v1.ok());
  const auto v1_dir = registry_->code_directory(*v1);
  ASSERT_TRUE(v1_dir.ok());
  ASSERT_TRUE(registry_->update_code("f", make_zip("app.py", "def handler(e, c): return 2\n"), std::nullopt).ok());
  // The version keeps its own code after $LATEST moved on.
  EXPECT_TRUE(std::filesystem::exists(*v1_dir / "app.py"));
  ASSERT_TRUE(registry_->put_provisioned("f", "1", 1).ok());
  ASSERT_TRUE(registry_->remove("f").ok());
  EXPECT_FALSE(std::filesystem::exists(*v1_dir));
  EXPECT_TRUE(registry_->provisioned_all().empty());
  ASSERT_TRUE(registry_->create(spec("f")).ok());
  EXPECT_EQ(registry_->get_qualified("f", "1").error().code, ErrorCode::kResourceNotFound);
  EXPECT_EQ(registry_->publish_version("f", PublishSpec{})->version, "1");
}

}  // namespace
}  // namespace nimbus::registry
