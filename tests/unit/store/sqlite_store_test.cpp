#include "store/sqlite_store.h"

#include <gtest/gtest.h>

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "store/migrations.h"

namespace nimbus::store {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("nimbus-store-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static FunctionRow row(const std::string& name, const std::string& rev = "r1") {
    return FunctionRow{name, R"({"name":")" + name + "\"}", rev, "abcd", 10, 1, 2};
  }
  std::filesystem::path dir_;
};

TEST_F(SqliteStoreTest, MigratesAndReopens) {
  {
    SqliteStore s(dir_ / "n.db");
    ASSERT_TRUE(s.open().ok());
    EXPECT_EQ(s.schema_version(), static_cast<int>(kMigrations.size()));
    ASSERT_TRUE(s.insert_function(row("a")).ok());
  }
  SqliteStore again(dir_ / "n.db");
  ASSERT_TRUE(again.open().ok());
  auto got = again.get_function("a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->document, R"({"name":"a"})");
}

TEST_F(SqliteStoreTest, RefusesNewerSchema) {
  {
    SqliteStore s(dir_ / "n.db");
    ASSERT_TRUE(s.open().ok());
  }
  // Pretend a later nimbus migrated further.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "n.db").c_str(), &raw), 0);
  ASSERT_EQ(sqlite3_exec(raw, "PRAGMA user_version=999", nullptr, nullptr, nullptr), 0);
  sqlite3_close(raw);
  SqliteStore s(dir_ / "n.db");
  auto opened = s.open();
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("newer"), std::string::npos);
}

TEST_F(SqliteStoreTest, InsertConflictGetMissingDeleteMissing) {
  SqliteStore s(dir_ / "n.db");
  ASSERT_TRUE(s.open().ok());
  ASSERT_TRUE(s.insert_function(row("a")).ok());
  auto dup = s.insert_function(row("a"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, base::ErrorCode::kResourceConflict);
  EXPECT_EQ(s.get_function("zz").error().code, base::ErrorCode::kResourceNotFound);
  EXPECT_EQ(s.delete_function("zz").error().code, base::ErrorCode::kResourceNotFound);
  EXPECT_TRUE(s.delete_function("a").ok());
  EXPECT_FALSE(s.get_function("a").ok());
}

TEST_F(SqliteStoreTest, UpdateIsCompareAndSwapOnRevision) {
  SqliteStore s(dir_ / "n.db");
  ASSERT_TRUE(s.open().ok());
  ASSERT_TRUE(s.insert_function(row("a", "r1")).ok());
  EXPECT_TRUE(s.update_function(row("a", "r2"), "r1").ok());
  auto stale = s.update_function(row("a", "r3"), "r1");
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, base::ErrorCode::kPreconditionFailed);
  EXPECT_EQ(s.get_function("a")->revision_id, "r2");
  EXPECT_EQ(s.update_function(row("gone", "r2"), "r1").error().code, base::ErrorCode::kResourceNotFound);
}

TEST_F(SqliteStoreTest, ListsInNameOrderAfterMarker) {
  SqliteStore s(dir_ / "n.db");
  ASSERT_TRUE(s.open().ok());
  for (const char* n : {"c", "a", "e", "b", "d"}) ASSERT_TRUE(s.insert_function(row(n)).ok());
  auto first = s.list_functions("", 2);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].name, "a");
  EXPECT_EQ((*first)[1].name, "b");
  auto rest = s.list_functions("b", 10);
  ASSERT_EQ(rest->size(), 3u);
  EXPECT_EQ((*rest)[2].name, "e");
  auto usage = s.usage();
  EXPECT_EQ(usage->function_count, 5);
  EXPECT_EQ(usage->total_code_size, 50);
  EXPECT_TRUE(*s.code_in_use("abcd"));
  EXPECT_FALSE(*s.code_in_use("ffff"));
}

TEST_F(SqliteStoreTest, OpenFailsWithPathInMessage) {
  SqliteStore s(dir_ / "missing-dir" / "n.db");
  auto opened = s.open();
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("missing-dir"), std::string::npos);
}

TEST_F(SqliteStoreTest, PublishesVersionsAtomicallyWithTheFunctionRow) {
  SqliteStore s(dir_ / "n.db");
  ASSERT_TRUE(s.open().ok());
  ASSERT_TRUE(s.insert_function(row("f", "r1")).ok());
  FunctionRow bumped = row("f", "r2");
  ASSERT_TRUE(s.publish_version(bumped, "r1", VersionRow{"f", 1, "{}", "v1code", 7, 3}).ok());
  // A stale revision publishes nothing.
  auto stale = s.publish_version(row("f", "r3"), "r1", VersionRow{"f", 2, "{}", "v2code", 7, 3});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, base::ErrorCode::kPreconditionFailed);
  EXPECT_EQ(s.get_version("f", 2).error().code, base::ErrorCode::kResourceNotFound);
  // A taken number leaves the function row as it was.
  auto taken = s.publish_version(row("f", "r4"), "r2", VersionRow{"f", 1, "{}", "x", 7, 3});
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, base::ErrorCode::kResourceConflict);
  EXPECT_EQ(s.get_function("f")->revision_id, "r2");

  ASSERT_TRUE(s.publish_version(row("f", "r5"), "r2", VersionRow{"f", 2, "{}", "v2code", 7, 3}).ok());
  auto listed = s.list_versions("f", 0, 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].version, 2);
  EXPECT_EQ(s.list_versions("f", 1, 10)->size(), 1u);
  EXPECT_TRUE(*s.code_in_use("v1code"));  // a version keeps its code alive
  ASSERT_TRUE(s.delete_version("f", 1).ok());
  EXPECT_FALSE(*s.code_in_use("v1code"));
  EXPECT_EQ(s.delete_version("f", 1).error().code, base::ErrorCode::kResourceNotFound);
}

TEST_F(SqliteStoreTest, ResourcesBelongToTheirFunction) {
  SqliteStore s(dir_ / "n.db");
  ASSERT_TRUE(s.open().ok());
  ASSERT_TRUE(s.insert_function(row("f")).ok());
  const ResourceRow prod{"f", ResourceKind::kAlias, "prod", R"({"v":"1"})", "a1"};
  ASSERT_TRUE(s.insert_resource(prod).ok());
  EXPECT_EQ(s.insert_resource(prod).error().code, base::ErrorCode::kResourceConflict);
  EXPECT_EQ(s.insert_resource(ResourceRow{"nobody", ResourceKind::kAlias, "x", "{}", "r"}).error().code,
            base::ErrorCode::kResourceNotFound);
  // Kinds are separate namespaces.
  EXPECT_EQ(s.get_resource(ResourceKind::kProvisionedConcurrency, "f", "prod").error().code,
            base::ErrorCode::kResourceNotFound);
  ASSERT_TRUE(s.put_resource(ResourceRow{"f", ResourceKind::kProvisionedConcurrency, "prod", "{}", "p"}).ok());
  ASSERT_TRUE(s.put_resource(ResourceRow{"f", ResourceKind::kProvisionedConcurrency, "prod", "{\"n\":2}", "p2"}).ok());
  EXPECT_EQ(s.get_resource(ResourceKind::kProvisionedConcurrency, "f", "prod")->revision_id, "p2");

  ResourceRow moved = prod;
  moved.revision_id = "a2";
  EXPECT_EQ(s.update_resource(moved, "wrong").error().code, base::ErrorCode::kPreconditionFailed);
  ASSERT_TRUE(s.update_resource(moved, "a1").ok());
  ASSERT_TRUE(s.insert_resource(ResourceRow{"f", ResourceKind::kAlias, "beta", "{}", "b"}).ok());
  auto aliases = s.list_resources(ResourceKind::kAlias, "f", "", 10);
  ASSERT_EQ(aliases->size(), 2u);
  EXPECT_EQ((*aliases)[0].key, "beta");
  EXPECT_EQ(s.list_resources(ResourceKind::kAlias, "f", "beta", 10)->size(), 1u);
  EXPECT_EQ(s.all_resources(ResourceKind::kProvisionedConcurrency)->size(), 1u);

  // Deleting the function takes its resources and versions with it.
  ASSERT_TRUE(s.publish_version(row("f", "r9"), "r1", VersionRow{"f", 1, "{}", "c", 1, 1}).ok());
  ASSERT_TRUE(s.delete_function("f").ok());
  EXPECT_TRUE(s.all_resources(ResourceKind::kAlias)->empty());
  EXPECT_TRUE(s.list_versions("f", 0, 10)->empty());
  ASSERT_TRUE(s.insert_function(row("f")).ok());
  EXPECT_TRUE(s.list_resources(ResourceKind::kAlias, "f", "", 10)->empty());
}

}  // namespace
}  // namespace nimbus::store

namespace nimbus::store {
namespace {

TEST(SqliteStoreRoutes, PutListDeleteAndSettings) {
  const auto dir = std::filesystem::temp_directory_path() / ("nimbus-store-routes-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    SqliteStore s(dir / "n.db");
    ASSERT_TRUE(s.open().ok());
    ASSERT_TRUE(s.put_route(RouteRow{"GET /b", R"({"f":1})", 1}).ok());
    ASSERT_TRUE(s.put_route(RouteRow{"$default", R"({"f":2})", 2}).ok());
    ASSERT_TRUE(s.put_route(RouteRow{"GET /b", R"({"f":3})", 3}).ok());  // replaces
    auto rows = s.list_routes();
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), 2u);
    EXPECT_EQ((*rows)[0].route_key, "$default");
    EXPECT_EQ((*rows)[1].document, R"({"f":3})");
    EXPECT_EQ((*rows)[1].updated_ms, 3);
    ASSERT_TRUE(s.delete_route("$default").ok());
    auto gone = s.delete_route("$default");
    ASSERT_FALSE(gone.ok());
    EXPECT_EQ(gone.error().code, base::ErrorCode::kResourceNotFound);

    EXPECT_EQ(*s.get_gateway_setting("cors"), "");
    ASSERT_TRUE(s.put_gateway_setting("cors", R"({"AllowOrigins":["*"]})").ok());
  }
  SqliteStore again(dir / "n.db");
  ASSERT_TRUE(again.open().ok());
  EXPECT_EQ(again.list_routes()->size(), 1u);
  EXPECT_EQ(*again.get_gateway_setting("cors"), R"({"AllowOrigins":["*"]})");
  ASSERT_TRUE(again.put_gateway_setting("cors", "").ok());
  EXPECT_EQ(*again.get_gateway_setting("cors"), "");
  std::filesystem::remove_all(dir);
}

TEST_F(SqliteStoreTest, SchedulesRoundTripAndSurviveReopen) {
  ScheduleRow nightly{"nightly", "cron(0 2 * * ? *)", "Europe/Paris", "report", "live", std::nullopt, true,
                      1000, 5000, -1};
  ScheduleRow fixed{"fixed", "rate(5 minutes)", "UTC", "report", "", R"({"k":1})", false, 2000, -1, 4000};
  {
    SqliteStore s(dir_ / "n.db");
    ASSERT_TRUE(s.open().ok());
    ASSERT_TRUE(s.insert_schedule(nightly).ok());
    ASSERT_TRUE(s.insert_schedule(fixed).ok());
    auto dup = s.insert_schedule(nightly);
    ASSERT_FALSE(dup.ok());
    EXPECT_EQ(dup.error().code, base::ErrorCode::kResourceConflict);
    nightly.last_fire_ms = 5000;
    nightly.next_fire_ms = 9000;
    ASSERT_TRUE(s.update_schedule(nightly).ok());
    auto missing = s.update_schedule(ScheduleRow{"nope", "rate(1 day)"});
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, base::ErrorCode::kResourceNotFound);
  }
  SqliteStore s(dir_ / "n.db");
  ASSERT_TRUE(s.open().ok());
  auto rows = s.list_schedules();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].name, "fixed");  // name order
  EXPECT_EQ((*rows)[0].input, std::optional<std::string>(R"({"k":1})"));
  EXPECT_FALSE((*rows)[0].enabled);
  EXPECT_EQ((*rows)[0].last_fire_ms, 4000);
  auto got = s.get_schedule("nightly");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->expression, "cron(0 2 * * ? *)");
  EXPECT_EQ(got->timezone, "Europe/Paris");
  EXPECT_EQ(got->function, "report");
  EXPECT_EQ(got->qualifier, "live");
  EXPECT_EQ(got->input, std::nullopt);
  EXPECT_TRUE(got->enabled);
  EXPECT_EQ(got->created_ms, 1000);
  EXPECT_EQ(got->next_fire_ms, 9000);
  EXPECT_EQ(got->last_fire_ms, 5000);
  ASSERT_TRUE(s.delete_schedule("nightly").ok());
  EXPECT_EQ(s.get_schedule("nightly").error().code, base::ErrorCode::kResourceNotFound);
  EXPECT_EQ(s.delete_schedule("nightly").error().code, base::ErrorCode::kResourceNotFound);
}

}  // namespace
}  // namespace nimbus::store
