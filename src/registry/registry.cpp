#include "registry/registry.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/crypto.h"
#include "registry/validation.h"

namespace nimbus::registry {

using base::ErrorCode;
using base::make_error;

namespace {
constexpr std::size_t kMaxPage = 50;

base::Error not_found(const Registry& r, std::string_view name) {
  return make_error(ErrorCode::kResourceNotFound,
                    "Function not found: " + r.function_arn(name));
}
}  // namespace

Registry::Registry(store::Store& store, store::BlobStore& blobs, const base::Clock& clock,
                   RegistryConfig config)
    : store_(store), blobs_(blobs), clock_(clock), config_(std::move(config)) {}

std::string Registry::function_arn(std::string_view name, std::string_view qualifier) const {
  std::string arn = fmt::format("arn:aws:lambda:{}:{}:function:{}", config_.region, config_.account_id, name);
  if (!qualifier.empty()) fmt::format_to(std::back_inserter(arn), ":{}", qualifier);
  return arn;
}

base::Result<FunctionRef> Registry::resolve(std::string_view function_name) const {
  return parse_function_ref(function_name, config_.region, config_.account_id);
}

base::Status Registry::store_code(FunctionConfig& config, const std::string& zip) {
  if (zip.size() > kMaxZippedBytes) {
    return make_error(ErrorCode::kRequestTooLarge,
                      fmt::format("Zipped size must be smaller than {} bytes", kMaxZippedBytes));
  }
  auto info = store::inspect_zip(zip, kMaxUnzippedBytes);
  if (!info.ok()) return std::move(info).error();
  auto digest = blobs_.put(zip);
  if (!digest.ok()) return std::move(digest).error();
  // Unpack now so a package that cannot be unpacked is refused at upload,
  // and the execution core finds it ready.
  auto dir = blobs_.unpacked(*digest);
  if (!dir.ok()) return std::move(dir).error();
  config.code_sha256 = base::base64_encode(base::as_bytes(*digest));
  config.code_sha256_hex = base::to_hex(*digest);
  config.code_size = static_cast<std::int64_t>(zip.size());
  return base::Ok{};
}

base::Result<FunctionConfig> Registry::create(FunctionSpec spec) {
  std::lock_guard lock(write_mu_);
  FunctionConfig c;
  c.name = std::move(spec.name);
  c.runtime = std::move(spec.runtime);
  c.role = std::move(spec.role);
  c.handler = std::move(spec.handler);
  if (spec.description) c.description = std::move(*spec.description);
  if (spec.timeout) c.timeout = *spec.timeout;
  if (spec.memory_size) c.memory_size = *spec.memory_size;
  if (spec.environment) c.environment = std::move(*spec.environment);
  if (spec.architectures) c.architectures = std::move(*spec.architectures);
  if (spec.ephemeral_storage) c.ephemeral_storage = *spec.ephemeral_storage;
  if (spec.tracing_mode) c.tracing_mode = std::move(*spec.tracing_mode);
  if (spec.dead_letter_target) c.dead_letter_target = std::move(*spec.dead_letter_target);
  c.tags = std::move(spec.tags);
  NIMBUS_TRY(validate_config(c));
  // Refuse a taken name before storing any code.
  auto existing = store_.get_function(c.name);
  if (existing.ok()) {
    return make_error(ErrorCode::kResourceConflict, "Function already exist: " + c.name);
  }
  if (existing.error().code != ErrorCode::kResourceNotFound) return std::move(existing).error();
  NIMBUS_TRY(store_code(c, spec.zip));
  c.last_modified_ms = clock_.now_ms();
  c.revision_id = base::uuid4();
  store::FunctionRow row{c.name,      to_document(c).dump(), c.revision_id,      c.code_sha256_hex,
                         c.code_size, c.last_modified_ms,    c.last_modified_ms};
  NIMBUS_TRY(store_.insert_function(row));
  cache_put(c);
  spdlog::info("registry: created function {} ({}, {} bytes of code)", c.name, c.runtime, c.code_size);
  return c;
}

void Registry::cache_put(const FunctionConfig& config) {
  std::lock_guard lock(cache_mu_);
  cache_[config.name] = config;
}

void Registry::cache_erase(std::string_view name) {
  std::lock_guard lock(cache_mu_);
  if (const auto it = cache_.find(name); it != cache_.end()) cache_.erase(it);
}

base::Result<FunctionConfig> Registry::load(std::string_view name) {
  {
    std::lock_guard lock(cache_mu_);
    if (const auto it = cache_.find(name); it != cache_.end()) return it->second;
  }
  auto row = store_.get_function(name);
  if (!row.ok()) {
    if (row.error().code == ErrorCode::kResourceNotFound) return not_found(*this, name);
    return std::move(row).error();
  }
  auto doc = nlohmann::json::parse(row->document, nullptr, false);
  if (doc.is_discarded()) {
    return make_error(ErrorCode::kService, "stored document of function " + std::string(name) + " is corrupt");
  }
  FunctionConfig config = from_document(doc);
  cache_put(config);
  return config;
}

base::Status Registry::save(const FunctionConfig& c, std::string_view expected_revision) {
  store::FunctionRow row{c.name,      to_document(c).dump(), c.revision_id, c.code_sha256_hex,
                         c.code_size, 0,                     c.last_modified_ms};
  auto status = store_.update_function(row, expected_revision);
  if (status.ok()) {
    cache_put(c);
    return status;
  }
  cache_erase(c.name);  // whatever happened, re-read from the store next time
  if (status.error().code == ErrorCode::kResourceNotFound) return not_found(*this, c.name);
  if (status.error().code == ErrorCode::kPreconditionFailed) {
    // The caller's RevisionId was checked before; another writer got there first.
    return make_error(ErrorCode::kResourceConflict,
                      "The operation cannot be performed at this time. An update is in progress "
                      "for resource: " + function_arn(c.name));
  }
  return status;
}

base::Result<FunctionConfig> Registry::get(std::string_view name) { return load(name); }

base::Result<FunctionPage> Registry::list(std::string_view marker, std::size_t max_items) {
  const std::size_t limit = std::clamp<std::size_t>(max_items == 0 ? kMaxPage : max_items, 1, kMaxPage);
  // One extra row tells whether another page follows.
  auto rows = store_.list_functions(marker, limit + 1);
  if (!rows.ok()) return std::move(rows).error();
  FunctionPage page;
  for (const auto& row : *rows) {
    if (page.functions.size() == limit) {
      page.next_marker = page.functions.back().name;
      break;
    }
    auto doc = nlohmann::json::parse(row.document, nullptr, false);
    if (doc.is_discarded()) continue;
    page.functions.push_back(from_document(doc));
  }
  return page;
}

base::Result<FunctionConfig> Registry::update_code(std::string_view name, std::string zip,
                                                   const std::optional<std::string>& revision_id) {
  std::lock_guard lock(write_mu_);
  auto current = load(name);
  if (!current.ok()) return std::move(current).error();
  FunctionConfig c = *current;
  if (revision_id && *revision_id != c.revision_id) {
    return make_error(ErrorCode::kPreconditionFailed,
                      "The Revision Id provided does not match the latest Revision Id. Call the "
                      "GetFunction/GetAlias API to retrieve the latest Revision Id");
  }
  const std::string old_code = c.code_sha256_hex;
  NIMBUS_TRY(store_code(c, zip));
  c.last_modified_ms = clock_.now_ms();
  c.revision_id = base::uuid4();
  NIMBUS_TRY(save(c, current->revision_id));
  if (old_code != c.code_sha256_hex) collect_garbage(old_code);
  return c;
}

base::Result<FunctionConfig> Registry::update_configuration(std::string_view name, const ConfigPatch& p) {
  std::lock_guard lock(write_mu_);
  auto current = load(name);
  if (!current.ok()) return std::move(current).error();
  FunctionConfig c = *current;
  if (p.revision_id && *p.revision_id != c.revision_id) {
    return make_error(ErrorCode::kPreconditionFailed,
                      "The Revision Id provided does not match the latest Revision Id. Call the "
                      "GetFunction/GetAlias API to retrieve the latest Revision Id");
  }
  if (p.runtime) c.runtime = *p.runtime;
  if (p.role) c.role = *p.role;
  if (p.handler) c.handler = *p.handler;
  if (p.description) c.description = *p.description;
  if (p.timeout) c.timeout = *p.timeout;
  if (p.memory_size) c.memory_size = *p.memory_size;
  if (p.environment) c.environment = *p.environment;
  if (p.ephemeral_storage) c.ephemeral_storage = *p.ephemeral_storage;
  if (p.tracing_mode) c.tracing_mode = *p.tracing_mode;
  if (p.dead_letter_target) c.dead_letter_target = *p.dead_letter_target;
  NIMBUS_TRY(validate_config(c));
  c.last_modified_ms = clock_.now_ms();
  c.revision_id = base::uuid4();
  NIMBUS_TRY(save(c, current->revision_id));
  return c;
}

base::Status Registry::remove(std::string_view name) {
  std::lock_guard lock(write_mu_);
  auto current = load(name);
  if (!current.ok()) return std::move(current).error();
  // The versions go with the function (the store cascades); so may their code.
  std::vector<std::string> version_code;
  if (auto versions = store_.list_versions(name, 0, 1u << 20); versions.ok()) {
    for (const auto& v : *versions) version_code.push_back(v.code_sha256);
  }
  auto status = store_.delete_function(name);
  cache_erase(name);
  forget_children(name);
  if (!status.ok()) {
    if (status.error().code == ErrorCode::kResourceNotFound) return not_found(*this, name);
    return status;
  }
  collect_garbage(current->code_sha256_hex);
  for (const auto& code : version_code) collect_garbage(code);
  if (current->reserved_concurrency) reserved_total_.store(-1);  // recount on next read
  spdlog::info("registry: deleted function {}", name);
  return base::Ok{};
}

void Registry::collect_garbage(const std::string& code_sha256_hex) {
  auto in_use = store_.code_in_use(code_sha256_hex);
  if (!in_use.ok() || *in_use) return;
  auto digest = base::digest_from_hex(code_sha256_hex);
  if (!digest) return;
  auto removed = blobs_.remove(*digest);
  if (!removed.ok()) spdlog::warn("registry: {}", removed.error().message);
}

base::Status Registry::tag(std::string_view name, const Tags& tags) {
  std::lock_guard lock(write_mu_);
  auto current = load(name);
  if (!current.ok()) return std::move(current).error();
  FunctionConfig c = *current;
  for (const auto& [k, v] : tags) c.tags[k] = v;
  NIMBUS_TRY(validate_tags(c.tags));
  c.revision_id = base::uuid4();
  return save(c, current->revision_id);
}

base::Status Registry::untag(std::string_view name, const std::vector<std::string>& keys) {
  std::lock_guard lock(write_mu_);
  auto current = load(name);
  if (!current.ok()) return std::move(current).error();
  FunctionConfig c = *current;
  for (const auto& k : keys) c.tags.erase(k);
  c.revision_id = base::uuid4();
  return save(c, current->revision_id);
}

std::int64_t Registry::reserved_total() {
  // Computed once from the store, then kept current by the writers below;
  // the invoke path reads it on every invocation.
  if (const std::int64_t cached = reserved_total_.load(); cached >= 0) return cached;
  std::int64_t total = 0;
  std::string marker;
  for (;;) {
    auto page = list(marker, kMaxPage);
    if (!page.ok()) return 0;  // not cached: the next call tries again
    for (const auto& f : page->functions) total += f.reserved_concurrency.value_or(0);
    if (page->next_marker.empty()) break;
    marker = page->next_marker;
  }
  reserved_total_.store(total);
  return total;
}

base::Result<FunctionConfig> Registry::set_reserved_concurrency(std::string_view name, std::optional<int> reserved) {
  std::lock_guard lock(write_mu_);
  auto current = load(name);
  if (!current.ok()) return std::move(current).error();
  FunctionConfig c = *current;
  if (reserved) {
    if (*reserved < 0) {
      return make_error(ErrorCode::kValidation,
                        fmt::format("1 validation error detected: Value '{}' at 'reservedConcurrentExecutions' "
                                    "failed to satisfy constraint: Member must have value greater than or equal to 0",
                                    *reserved));
    }
    const std::int64_t others = reserved_total() - c.reserved_concurrency.value_or(0);
    if (others + *reserved > config_.account_concurrency - kMinUnreserved) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        fmt::format("Specified ReservedConcurrentExecutions for function decreases account's "
                                    "UnreservedConcurrentExecution below its minimum value of [{}].",
                                    kMinUnreserved));
    }
  }
  const std::int64_t before = reserved_total();
  const int delta = reserved.value_or(0) - current->reserved_concurrency.value_or(0);
  c.reserved_concurrency = reserved;
  c.revision_id = base::uuid4();
  NIMBUS_TRY(save(c, current->revision_id));
  reserved_total_.store(before + delta);
  return c;
}

base::Result<AccountUsage> Registry::usage() {
  auto totals = store_.usage();
  if (!totals.ok()) return std::move(totals).error();
  return AccountUsage{totals->function_count, totals->total_code_size};
}

base::Result<std::filesystem::path> Registry::code_directory(std::string_view name) {
  auto c = load(name);
  if (!c.ok()) return std::move(c).error();
  return code_directory(*c);
}

base::Result<std::filesystem::path> Registry::code_directory(const FunctionConfig& config) {
  auto digest = base::digest_from_hex(config.code_sha256_hex);
  if (!digest) return make_error(ErrorCode::kService, "function " + config.name + " has no code");
  return blobs_.unpacked(*digest);
}

base::Result<store::CodeLease> Registry::lease_code(const FunctionConfig& config) {
  auto digest = base::digest_from_hex(config.code_sha256_hex);
  if (!digest) return make_error(ErrorCode::kService, "function " + config.name + " has no code");
  return blobs_.lease(*digest);
}

base::Result<std::string> Registry::code_zip(std::string_view name) {
  auto c = load(name);
  if (!c.ok()) return std::move(c).error();
  auto digest = base::digest_from_hex(c->code_sha256_hex);
  if (!digest) return make_error(ErrorCode::kService, "function " + std::string(name) + " has no code");
  return blobs_.read(*digest);
}

}  // namespace nimbus::registry
