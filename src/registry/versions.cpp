// Registry: published versions, aliases and provisioned-concurrency configs.
// Versions are immutable snapshots of $LATEST; aliases and provisioned
// configs are small documents stored as the function's resources. All three
// are cached in memory, so the invoke path resolves a qualifier without
// touching SQLite.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "base/crypto.h"
#include "registry/registry.h"
#include "registry/validation.h"

namespace nimbus::registry {

using base::ErrorCode;
using base::make_error;
using store::ResourceKind;

namespace {
constexpr std::size_t kMaxVersionsPage = 50;
constexpr std::size_t kMaxAliasPage = 10000;

std::string child_key(std::string_view function, std::string_view key) {
  return fmt::format("{}:{}", function, key);
}

std::int64_t version_number(std::string_view text) {
  std::int64_t n = 0;
  std::from_chars(text.data(), text.data() + text.size(), n);
  return n;
}

// What a version freezes: everything but identity, bookkeeping and the
// settings that belong to the function rather than to one version.
nlohmann::json frozen_content(const FunctionConfig& c) {
  nlohmann::json d = to_document(c);
  for (const char* key : {"version", "last_published", "revision_id", "last_modified_ms", "tags",
                          "reserved_concurrency", "description"}) {
    d.erase(key);
  }
  return d;
}

// A version shows the function's current tags and reserved concurrency.
FunctionConfig with_function_settings(FunctionConfig version, const FunctionConfig& latest) {
  version.tags = latest.tags;
  version.reserved_concurrency = latest.reserved_concurrency;
  version.last_published = 0;
  return version;
}

base::Status validate_alias_name(std::string_view name) {
  const bool chars_ok = !name.empty() && name.size() <= 128 &&
                        std::all_of(name.begin(), name.end(), [](char ch) {
                          return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
                        });
  const bool all_digits = std::all_of(name.begin(), name.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (!chars_ok || all_digits) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("1 validation error detected: Value '{}' at 'name' failed to satisfy constraint: "
                                  "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
                                  name));
  }
  return base::Ok{};
}

base::Status validate_version_text(std::string_view version, std::string_view member) {
  if (version != kLatest && !is_version_number(version)) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: "
                                  "Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)",
                                  version, member));
  }
  return base::Ok{};
}

base::Error revision_mismatch() {
  return make_error(ErrorCode::kPreconditionFailed,
                    "The Revision Id provided does not match the latest Revision Id. Call the "
                    "GetFunction/GetAlias API to retrieve the latest Revision Id");
}

base::Error must_be_published() {
  return make_error(ErrorCode::kInvalidParameterValue,
                    "The function resource provided must be an alias or a published version.");
}
}  // namespace

base::Result<FunctionConfig> Registry::load_version(std::string_view name, std::int64_t number) {
  const std::string key = child_key(name, std::to_string(number));
  {
    std::lock_guard lock(cache_mu_);
    if (const auto it = version_cache_.find(key); it != version_cache_.end()) return it->second;
  }
  auto row = store_.get_version(name, number);
  if (!row.ok()) {
    if (row.error().code == ErrorCode::kResourceNotFound) {
      return make_error(ErrorCode::kResourceNotFound, "Function not found: " + function_arn(name, std::to_string(number)));
    }
    return std::move(row).error();
  }
  auto doc = nlohmann::json::parse(row->document, nullptr, false);
  if (doc.is_discarded()) {
    return make_error(ErrorCode::kService, fmt::format("stored document of {} is corrupt", key));
  }
  FunctionConfig config = from_document(doc);
  std::lock_guard lock(cache_mu_);
  version_cache_[key] = config;
  return config;
}

base::Result<Alias> Registry::load_alias(std::string_view function, std::string_view alias) {
  const std::string key = child_key(function, alias);
  {
    std::lock_guard lock(cache_mu_);
    if (const auto it = alias_cache_.find(key); it != alias_cache_.end()) return it->second;
  }
  auto row = store_.get_resource(ResourceKind::kAlias, function, alias);
  if (!row.ok()) return std::move(row).error();
  auto doc = nlohmann::json::parse(row->document, nullptr, false);
  if (doc.is_discarded()) return make_error(ErrorCode::kService, fmt::format("stored alias {} is corrupt", key));
  Alias a = alias_from_document(doc);
  std::lock_guard lock(cache_mu_);
  alias_cache_[key] = a;
  return a;
}

void Registry::forget_children(std::string_view name) {
  // Keys are "name:..."; ';' sorts right after ':' and never occurs in a name.
  const std::string from = std::string(name) + ":";
  const std::string to = std::string(name) + ";";
  std::lock_guard lock(cache_mu_);
  version_cache_.erase(version_cache_.lower_bound(from), version_cache_.lower_bound(to));
  alias_cache_.erase(alias_cache_.lower_bound(from), alias_cache_.lower_bound(to));
  provisioned_.erase(provisioned_.lower_bound(from), provisioned_.lower_bound(to));
}

base::Result<FunctionConfig> Registry::publish_version(std::string_view name, const PublishSpec& spec) {
  std::lock_guard lock(write_mu_);
  auto current = load(name);
  if (!current.ok()) return std::move(current).error();
  FunctionConfig latest = *current;
  if (spec.revision_id && *spec.revision_id != latest.revision_id) return revision_mismatch();
  if (spec.code_sha256 && *spec.code_sha256 != latest.code_sha256) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("CodeSHA256 ({}) is different from current CodeSHA256 in $LATEST ({}). Please try "
                                  "again with the CodeSHA256 in $LATEST.",
                                  *spec.code_sha256, latest.code_sha256));
  }
  if (latest.last_published > 0) {
    auto previous = load_version(name, latest.last_published);
    if (previous.ok() && frozen_content(*previous) == frozen_content(latest)) {
      return with_function_settings(std::move(*previous), latest);
    }
  }
  const int number = latest.last_published + 1;
  FunctionConfig version = latest;
  version.version = std::to_string(number);
  version.last_published = 0;
  version.revision_id = base::uuid4();
  version.last_modified_ms = clock_.now_ms();
  if (spec.description) version.description = *spec.description;
  latest.last_published = number;
  latest.revision_id = base::uuid4();

  store::FunctionRow row{latest.name,      to_document(latest).dump(), latest.revision_id, latest.code_sha256_hex,
                         latest.code_size, 0,                          latest.last_modified_ms};
  store::VersionRow version_row{latest.name,          number, to_document(version).dump(), version.code_sha256_hex,
                                version.code_size, version.last_modified_ms};
  auto status = store_.publish_version(row, current->revision_id, version_row);
  if (!status.ok()) {
    cache_erase(name);
    if (status.error().code == ErrorCode::kPreconditionFailed) {
      return make_error(ErrorCode::kResourceConflict,
                        "The operation cannot be performed at this time. An update is in progress for resource: " +
                            function_arn(name));
    }
    return std::move(status).error();
  }
  cache_put(latest);
  {
    std::lock_guard cache_lock(cache_mu_);
    version_cache_[child_key(name, version.version)] = version;
  }
  spdlog::info("registry: published version {} of {}", number, name);
  return with_function_settings(std::move(version), latest);
}

base::Result<FunctionConfig> Registry::get_qualified(std::string_view name, std::string_view qualifier) {
  return select_version(name, qualifier, 1.0);
}

base::Result<FunctionConfig> Registry::select_version(std::string_view name, std::string_view qualifier,
                                                      double draw) {
  auto latest = load(name);
  if (!latest.ok()) return std::move(latest).error();
  if (qualifier.empty() || qualifier == kLatest) return latest;
  std::string version(qualifier);
  if (!is_version_number(qualifier)) {
    auto alias = load_alias(name, qualifier);
    if (!alias.ok()) {
      if (alias.error().code == ErrorCode::kResourceNotFound) {
        return make_error(ErrorCode::kResourceNotFound, "Function not found: " + function_arn(name, qualifier));
      }
      return std::move(alias).error();
    }
    version = alias->function_version;
    for (const auto& [other, weight] : alias->additional_weights) {
      if (draw < weight) version = other;
    }
    if (version == kLatest) return latest;
  }
  auto config = load_version(name, version_number(version));
  if (!config.ok()) return std::move(config).error();
  return with_function_settings(std::move(*config), *latest);
}

base::Result<FunctionPage> Registry::list_versions(std::string_view name, std::string_view marker,
                                                   std::size_t max_items) {
  const std::size_t limit = std::clamp<std::size_t>(max_items == 0 ? kMaxVersionsPage : max_items, 1, kMaxVersionsPage);
  auto latest = load(name);
  if (!latest.ok()) return std::move(latest).error();
  FunctionPage page;
  std::int64_t after = 0;
  if (marker.empty()) {
    page.functions.push_back(*latest);
  } else if (is_version_number(marker)) {
    after = version_number(marker);
  } else if (marker != kLatest) {
    return make_error(ErrorCode::kInvalidParameterValue, fmt::format("Invalid marker: {}", marker));
  }
  auto rows = store_.list_versions(name, after, limit + 1);
  if (!rows.ok()) return std::move(rows).error();
  for (const auto& row : *rows) {
    if (page.functions.size() == limit) {
      page.next_marker = page.functions.back().version;
      break;
    }
    auto doc = nlohmann::json::parse(row.document, nullptr, false);
    if (doc.is_discarded()) continue;
    page.functions.push_back(with_function_settings(from_document(doc), *latest));
  }
  return page;
}

base::Status Registry::delete_version(std::string_view name, std::string_view version) {
  if (!is_version_number(version)) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("Qualifier {} is not a version number; aliases are deleted with DeleteAlias",
                                  version));
  }
  std::lock_guard lock(write_mu_);
  auto latest = load(name);
  if (!latest.ok()) return std::move(latest).error();
  auto config = load_version(name, version_number(version));
  if (!config.ok()) return std::move(config).error();
  auto aliases = store_.list_resources(ResourceKind::kAlias, name, "", kMaxAliasPage);
  if (!aliases.ok()) return std::move(aliases).error();
  std::vector<std::string> users;
  for (const auto& row : *aliases) {
    const Alias a = alias_from_document(nlohmann::json::parse(row.document, nullptr, false));
    if (a.function_version == version || a.additional_weights.count(std::string(version)) > 0) {
      users.push_back(a.name);
    }
  }
  if (!users.empty()) {
    return make_error(ErrorCode::kResourceConflict,
                      fmt::format("Unable to delete version because the following aliases reference it: [{}]",
                                  fmt::join(users, ", ")));
  }
  NIMBUS_TRY(store_.delete_version(name, version_number(version)));
  (void)store_.delete_resource(ResourceKind::kProvisionedConcurrency, name, version);
  {
    std::lock_guard cache_lock(cache_mu_);
    version_cache_.erase(child_key(name, version));
    provisioned_.erase(child_key(name, version));
  }
  collect_garbage(config->code_sha256_hex);
  spdlog::info("registry: deleted version {} of {}", version, name);
  return base::Ok{};
}

base::Status Registry::check_routing(const Alias& a) {
  NIMBUS_TRY(validate_version_text(a.function_version, "functionVersion"));
  if (a.additional_weights.size() > 1) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      "Number of items in AdditionalVersionWeights cannot be greater than 1");
  }
  for (const auto& [version, weight] : a.additional_weights) {
    if (!is_version_number(version)) {
      return make_error(ErrorCode::kValidation,
                        fmt::format("1 validation error detected: Value '{}' at 'routingConfig.additionalVersionWeights' "
                                    "failed to satisfy constraint: Map keys must satisfy constraint: [Member must "
                                    "satisfy regular expression pattern: [0-9]+]",
                                    version));
    }
    if (!(weight >= 0.0 && weight <= 1.0)) {
      return make_error(ErrorCode::kValidation,
                        fmt::format("1 validation error detected: Value '{}' at 'routingConfig.additionalVersionWeights' "
                                    "failed to satisfy constraint: Map value must satisfy constraint: [Member must "
                                    "have value less than or equal to 1.0, Member must have value greater than or "
                                    "equal to 0.0]",
                                    weight));
    }
    if (version == a.function_version) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("Invalid function version {0}. Function version {0} is already included in "
                                    "routing configuration.",
                                    version));
    }
    if (a.function_version == kLatest) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        "$LATEST is not supported for an alias pointing to more than 1 version");
    }
    NIMBUS_TRY(load_version(a.function, version_number(version)));
  }
  if (a.function_version != kLatest) NIMBUS_TRY(load_version(a.function, version_number(a.function_version)));
  return base::Ok{};
}

base::Result<Alias> Registry::create_alias(std::string_view function, const AliasSpec& spec) {
  NIMBUS_TRY(validate_alias_name(spec.name));
  if (!spec.function_version) {
    return make_error(ErrorCode::kValidation,
                      "1 validation error detected: Value null at 'functionVersion' failed to satisfy constraint: "
                      "Member must not be null");
  }
  if (spec.description) NIMBUS_TRY(validate_description(*spec.description));
  std::lock_guard lock(write_mu_);
  auto latest = load(function);
  if (!latest.ok()) return std::move(latest).error();
  Alias a;
  a.function = std::string(function);
  a.name = spec.name;
  a.function_version = *spec.function_version;
  a.description = spec.description.value_or("");
  a.additional_weights = spec.additional_weights.value_or(std::map<std::string, double>{});
  a.revision_id = base::uuid4();
  NIMBUS_TRY(check_routing(a));
  auto inserted = store_.insert_resource(
      store::ResourceRow{a.function, ResourceKind::kAlias, a.name, to_document(a).dump(), a.revision_id});
  if (!inserted.ok()) {
    if (inserted.error().code == ErrorCode::kResourceConflict) {
      return make_error(ErrorCode::kResourceConflict, "Alias already exists: " + function_arn(function, a.name));
    }
    return std::move(inserted).error();
  }
  std::lock_guard cache_lock(cache_mu_);
  alias_cache_[child_key(function, a.name)] = a;
  return a;
}

base::Result<Alias> Registry::get_alias(std::string_view function, std::string_view alias) {
  auto latest = load(function);
  if (!latest.ok()) return std::move(latest).error();
  auto a = load_alias(function, alias);
  if (!a.ok() && a.error().code == ErrorCode::kResourceNotFound) {
    return make_error(ErrorCode::kResourceNotFound, "Cannot find alias arn: " + function_arn(function, alias));
  }
  return a;
}

base::Result<Alias> Registry::update_alias(std::string_view function, const AliasSpec& spec) {
  if (spec.description) NIMBUS_TRY(validate_description(*spec.description));
  std::lock_guard lock(write_mu_);
  auto latest = load(function);
  if (!latest.ok()) return std::move(latest).error();
  auto current = load_alias(function, spec.name);
  if (!current.ok()) {
    if (current.error().code == ErrorCode::kResourceNotFound) {
      return make_error(ErrorCode::kResourceNotFound, "Alias not found: " + function_arn(function, spec.name));
    }
    return std::move(current).error();
  }
  if (spec.revision_id && *spec.revision_id != current->revision_id) return revision_mismatch();
  Alias a = *current;
  if (spec.function_version) a.function_version = *spec.function_version;
  if (spec.description) a.description = *spec.description;
  if (spec.additional_weights) a.additional_weights = *spec.additional_weights;
  a.revision_id = base::uuid4();
  NIMBUS_TRY(check_routing(a));
  auto status = store_.update_resource(
      store::ResourceRow{a.function, ResourceKind::kAlias, a.name, to_document(a).dump(), a.revision_id},
      current->revision_id);
  std::lock_guard cache_lock(cache_mu_);
  if (!status.ok()) {
    alias_cache_.erase(child_key(function, a.name));
    return std::move(status).error();
  }
  alias_cache_[child_key(function, a.name)] = a;
  return a;
}

base::Status Registry::delete_alias(std::string_view function, std::string_view alias) {
  std::lock_guard lock(write_mu_);
  auto latest = load(function);
  if (!latest.ok()) return std::move(latest).error();
  // Lambda answers 204 whether or not the alias existed.
  (void)store_.delete_resource(ResourceKind::kAlias, function, alias);
  (void)store_.delete_resource(ResourceKind::kProvisionedConcurrency, function, alias);
  std::lock_guard cache_lock(cache_mu_);
  alias_cache_.erase(child_key(function, alias));
  provisioned_.erase(child_key(function, alias));
  return base::Ok{};
}

base::Result<AliasPage> Registry::list_aliases(std::string_view function, std::string_view function_version,
                                               std::string_view marker, std::size_t max_items) {
  if (!function_version.empty()) NIMBUS_TRY(validate_version_text(function_version, "functionVersion"));
  const std::size_t limit = std::clamp<std::size_t>(max_items == 0 ? kMaxVersionsPage : max_items, 1, kMaxVersionsPage);
  auto latest = load(function);
  if (!latest.ok()) return std::move(latest).error();
  auto rows = store_.list_resources(ResourceKind::kAlias, function, marker, kMaxAliasPage);
  if (!rows.ok()) return std::move(rows).error();
  AliasPage page;
  for (const auto& row : *rows) {
    auto doc = nlohmann::json::parse(row.document, nullptr, false);
    if (doc.is_discarded()) continue;
    Alias a = alias_from_document(doc);
    if (!function_version.empty() && a.function_version != function_version &&
        a.additional_weights.count(std::string(function_version)) == 0) {
      continue;
    }
    if (page.aliases.size() == limit) {
      page.next_marker = page.aliases.back().name;
      break;
    }
    page.aliases.push_back(std::move(a));
  }
  return page;
}

void Registry::load_provisioned_locked() {
  if (provisioned_loaded_) return;
  auto rows = store_.all_resources(ResourceKind::kProvisionedConcurrency);
  if (!rows.ok()) {
    spdlog::warn("registry: {}", rows.error().message);
    return;  // try again on the next call
  }
  for (const auto& row : *rows) {
    auto doc = nlohmann::json::parse(row.document, nullptr, false);
    if (doc.is_discarded()) continue;
    provisioned_[child_key(row.function, row.key)] = provisioned_from_document(doc);
  }
  provisioned_loaded_ = true;
}

base::Result<ProvisionedConcurrency> Registry::put_provisioned(std::string_view function, std::string_view qualifier,
                                                               int requested) {
  if (requested < 1) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("1 validation error detected: Value '{}' at 'provisionedConcurrentExecutions' "
                                  "failed to satisfy constraint: Member must have value greater than or equal to 1",
                                  requested));
  }
  if (qualifier.empty() || qualifier == kLatest) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      "Provisioned Concurrency Configs cannot be applied to unpublished function versions.");
  }
  std::lock_guard lock(write_mu_);
  auto target = get_qualified(function, qualifier);
  if (!target.ok()) return std::move(target).error();
  std::int64_t function_total = requested;
  std::int64_t account_total = requested;
  for (const auto& p : provisioned_all()) {
    if (p.function == function && p.qualifier == qualifier) continue;
    account_total += p.requested;
    if (p.function == function) function_total += p.requested;
  }
  if (target->reserved_concurrency && function_total > *target->reserved_concurrency) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution "
                      "for function");
  }
  if (account_total > config_.account_concurrency - kMinUnreserved) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("Requested Provisioned Concurrency exceeds the account's concurrency available for "
                                  "provisioning ({} minus the {} that stay unreserved)",
                                  config_.account_concurrency, kMinUnreserved));
  }
  ProvisionedConcurrency p{std::string(function), std::string(qualifier), requested, clock_.now_ms()};
  NIMBUS_TRY(store_.put_resource(store::ResourceRow{p.function, ResourceKind::kProvisionedConcurrency, p.qualifier,
                                                    to_document(p).dump(), base::uuid4()}));
  std::lock_guard cache_lock(cache_mu_);
  load_provisioned_locked();
  provisioned_[child_key(function, qualifier)] = p;
  return p;
}

base::Result<ProvisionedConcurrency> Registry::get_provisioned(std::string_view function, std::string_view qualifier) {
  if (qualifier.empty() || qualifier == kLatest) return must_be_published();
  auto target = get_qualified(function, qualifier);
  if (!target.ok()) return std::move(target).error();
  std::lock_guard lock(cache_mu_);
  load_provisioned_locked();
  if (const auto it = provisioned_.find(child_key(function, qualifier)); it != provisioned_.end()) return it->second;
  return make_error(ErrorCode::kProvisionedConfigNotFound, "No Provisioned Concurrency Config found for this function");
}

base::Status Registry::delete_provisioned(std::string_view function, std::string_view qualifier) {
  if (qualifier.empty() || qualifier == kLatest) return must_be_published();
  std::lock_guard lock(write_mu_);
  auto target = get_qualified(function, qualifier);
  if (!target.ok()) return std::move(target).error();
  auto status = store_.delete_resource(ResourceKind::kProvisionedConcurrency, function, qualifier);
  if (!status.ok() && status.error().code != ErrorCode::kResourceNotFound) return status;
  std::lock_guard cache_lock(cache_mu_);
  provisioned_.erase(child_key(function, qualifier));
  return base::Ok{};
}

base::Result<std::vector<ProvisionedConcurrency>> Registry::list_provisioned(std::string_view function) {
  auto latest = load(function);
  if (!latest.ok()) return std::move(latest).error();
  std::vector<ProvisionedConcurrency> out;
  for (auto& p : provisioned_all()) {
    if (p.function == function) out.push_back(std::move(p));
  }
  return out;
}

std::vector<ProvisionedConcurrency> Registry::provisioned_all() {
  std::lock_guard lock(cache_mu_);
  load_provisioned_locked();
  std::vector<ProvisionedConcurrency> out;
  out.reserve(provisioned_.size());
  for (const auto& [key, p] : provisioned_) out.push_back(p);
  return out;
}

}  // namespace nimbus::registry
