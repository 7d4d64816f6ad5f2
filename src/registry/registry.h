#pragma once
// Registry: the functions nimbus knows — their full Lambda configuration, code
// and tags — with Lambda's validation. It persists through store::Store and
// keeps code in store::BlobStore; it never starts processes.
//
// Threads: every method may be called from any thread (the store serialises).
// Calls block on the store; the control API calls them, the invoke path
// will read a cached snapshot instead. Owned by the daemon.

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "registry/function.h"
#include "store/blob_store.h"
#include "store/store.h"

namespace nimbus::registry {

struct RegistryConfig {
  std::string region = "us-east-1";
  std::string account_id = "000000000000";  // stable local account (12 digits)
  std::int64_t account_concurrency = 1000;
};

struct FunctionPage {
  std::vector<FunctionConfig> functions;
  std::string next_marker;  // empty on the last page
};

struct AliasPage {
  std::vector<Alias> aliases;
  std::string next_marker;  // empty on the last page
};

struct AccountUsage {
  std::int64_t function_count = 0;
  std::int64_t total_code_size = 0;
};

class Registry {
 public:
  Registry(store::Store& store, store::BlobStore& blobs, const base::Clock& clock,
           RegistryConfig config);

  [[nodiscard]] const RegistryConfig& config() const { return config_; }

  // Validates, stores the code blob, then the function row (atomically: a
  // failure leaves nothing behind but an unreferenced, content-addressed blob).
  [[nodiscard]] base::Result<FunctionConfig> create(FunctionSpec spec);
  [[nodiscard]] base::Result<FunctionConfig> get(std::string_view name);
  // ListFunctions: at most `max_items` (capped at 50), after `marker`.
  [[nodiscard]] base::Result<FunctionPage> list(std::string_view marker, std::size_t max_items);
  [[nodiscard]] base::Result<FunctionConfig> update_code(std::string_view name, std::string zip,
                                                         const std::optional<std::string>& revision_id);
  [[nodiscard]] base::Result<FunctionConfig> update_configuration(std::string_view name,
                                                                  const ConfigPatch& patch);
  [[nodiscard]] base::Status remove(std::string_view name);

  [[nodiscard]] base::Status tag(std::string_view name, const Tags& tags);
  [[nodiscard]] base::Status untag(std::string_view name, const std::vector<std::string>& keys);

  // PutFunctionConcurrency / DeleteFunctionConcurrency (nullopt). Leaves at
  // least kMinUnreserved of the account's concurrency unreserved.
  [[nodiscard]] base::Result<FunctionConfig> set_reserved_concurrency(std::string_view name,
                                                                      std::optional<int> reserved);
  // Sum of every function's reserved concurrency.
  [[nodiscard]] std::int64_t reserved_total();
  static constexpr int kMinUnreserved = 100;

  [[nodiscard]] base::Result<AccountUsage> usage();
  // The read-only directory holding the function's unpacked code.
  [[nodiscard]] base::Result<std::filesystem::path> code_directory(std::string_view name);
  // The read-only directory holding the code `config` ($LATEST or a version) runs.
  [[nodiscard]] base::Result<std::filesystem::path> code_directory(const FunctionConfig& config);
  // The same directory, kept on disk until the lease ends even if the
  // function is deleted or its code replaced meanwhile: what an instance
  // that mounts it holds while it lives.
  [[nodiscard]] base::Result<store::CodeLease> lease_code(const FunctionConfig& config);
  // The zip of a function's current code.
  [[nodiscard]] base::Result<std::string> code_zip(std::string_view name);

  // --- Versions, aliases and provisioned concurrency (versions.cpp) ---

  // PublishVersion: snapshots $LATEST as the next version number (never
  // reused). When nothing changed since the last publish, returns that version.
  [[nodiscard]] base::Result<FunctionConfig> publish_version(std::string_view name, const PublishSpec& spec);
  // The configuration `qualifier` names: "" or "$LATEST", a version number,
  // or an alias (its primary version). Served from memory once loaded.
  [[nodiscard]] base::Result<FunctionConfig> get_qualified(std::string_view name, std::string_view qualifier);
  // What an invocation runs: as get_qualified, but an alias that routes a
  // weight to a second version picks it when `draw` (uniform in [0,1)) < weight.
  [[nodiscard]] base::Result<FunctionConfig> select_version(std::string_view name, std::string_view qualifier,
                                                            double draw);
  // ListVersionsByFunction: $LATEST, then the versions ascending.
  [[nodiscard]] base::Result<FunctionPage> list_versions(std::string_view name, std::string_view marker,
                                                         std::size_t max_items);
  // Refused while an alias routes to it; takes its provisioned config along.
  [[nodiscard]] base::Status delete_version(std::string_view name, std::string_view version);

  [[nodiscard]] base::Result<Alias> create_alias(std::string_view function, const AliasSpec& spec);
  [[nodiscard]] base::Result<Alias> get_alias(std::string_view function, std::string_view alias);
  [[nodiscard]] base::Result<Alias> update_alias(std::string_view function, const AliasSpec& spec);
  [[nodiscard]] base::Status delete_alias(std::string_view function, std::string_view alias);
  // Aliases in name order; with `function_version`, only those routing to it.
  [[nodiscard]] base::Result<AliasPage> list_aliases(std::string_view function, std::string_view function_version,
                                                     std::string_view marker, std::size_t max_items);

  [[nodiscard]] base::Result<ProvisionedConcurrency> put_provisioned(std::string_view function,
                                                                     std::string_view qualifier, int requested);
  [[nodiscard]] base::Result<ProvisionedConcurrency> get_provisioned(std::string_view function,
                                                                     std::string_view qualifier);
  // Succeeds when there is none (as Lambda's Delete does).
  [[nodiscard]] base::Status delete_provisioned(std::string_view function, std::string_view qualifier);
  [[nodiscard]] base::Result<std::vector<ProvisionedConcurrency>> list_provisioned(std::string_view function);
  // Every provisioned config of every function, from memory: the invoker
  // polls it to keep that many instances initialised.
  [[nodiscard]] std::vector<ProvisionedConcurrency> provisioned_all();

  // Resolves a FunctionName as callers may write it (name, ARN, name:qualifier).
  [[nodiscard]] base::Result<FunctionRef> resolve(std::string_view function_name) const;
  // arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
  [[nodiscard]] std::string function_arn(std::string_view name, std::string_view qualifier = {}) const;

 private:
  // Checks the package, stores it, fills the code fields of `config`.
  base::Status store_code(FunctionConfig& config, const std::string& zip);
  base::Result<FunctionConfig> load(std::string_view name);
  base::Status save(const FunctionConfig& config, std::string_view expected_revision);
  void collect_garbage(const std::string& code_sha256_hex);
  base::Result<FunctionConfig> load_version(std::string_view name, std::int64_t number);
  base::Result<Alias> load_alias(std::string_view function, std::string_view alias);
  // Checks an alias's target and routing against Lambda's rules.
  base::Status check_routing(const Alias& alias);
  // Loads every provisioned config once; the caller holds cache_mu_.
  void load_provisioned_locked();
  // Drops every cached version, alias and provisioned config of a function.
  void forget_children(std::string_view name);

  store::Store& store_;
  store::BlobStore& blobs_;
  const base::Clock& clock_;
  RegistryConfig config_;
  // Read-through cache of documents by name, so the invoke path does not
  // query SQLite; every write goes through this class and updates it.
  std::mutex cache_mu_;
  std::map<std::string, FunctionConfig, std::less<>> cache_;  // GUARDED_BY(cache_mu_)
  // Published versions ("name:N", immutable) and aliases ("name:alias").
  std::map<std::string, FunctionConfig, std::less<>> version_cache_;  // GUARDED_BY(cache_mu_)
  std::map<std::string, Alias, std::less<>> alias_cache_;             // GUARDED_BY(cache_mu_)
  // Every provisioned config, "name:qualifier" -> config; loaded on first use.
  std::map<std::string, ProvisionedConcurrency, std::less<>> provisioned_;  // GUARDED_BY(cache_mu_)
  bool provisioned_loaded_ = false;                                          // GUARDED_BY(cache_mu_)
  std::atomic<std::int64_t> reserved_total_{-1};               // -1: not counted yet
  void cache_put(const FunctionConfig& config);
  void cache_erase(std::string_view name);
  // Serialises writers, so code garbage collection never races an upload of
  // the same package. Readers do not take it.
  std::mutex write_mu_;
};

}  // namespace nimbus::registry
