#include "registry/function.h"

#include <algorithm>

namespace nimbus::registry {

nlohmann::json to_document(const FunctionConfig& c) {
  return {
      {"name", c.name},
      {"version", c.version},
      {"last_published", c.last_published},
      {"runtime", c.runtime},
      {"role", c.role},
      {"handler", c.handler},
      {"description", c.description},
      {"timeout", c.timeout},
      {"memory_size", c.memory_size},
      {"environment", c.environment},
      {"architectures", c.architectures},
      {"ephemeral_storage", c.ephemeral_storage},
      {"tracing_mode", c.tracing_mode},
      {"dead_letter_target", c.dead_letter_target},
      {"code_sha256", c.code_sha256},
      {"code_sha256_hex", c.code_sha256_hex},
      {"code_size", c.code_size},
      {"last_modified_ms", c.last_modified_ms},
      {"revision_id", c.revision_id},
      {"tags", c.tags},
      {"reserved_concurrency", c.reserved_concurrency ? nlohmann::json(*c.reserved_concurrency) : nlohmann::json()},
  };
}

FunctionConfig from_document(const nlohmann::json& d) {
  FunctionConfig c;
  c.name = d.value("name", "");
  c.version = d.value("version", std::string(kLatest));
  c.last_published = d.value("last_published", 0);
  c.runtime = d.value("runtime", "");
  c.role = d.value("role", "");
  c.handler = d.value("handler", "");
  c.description = d.value("description", "");
  c.timeout = d.value("timeout", 3);
  c.memory_size = d.value("memory_size", 128);
  c.environment = d.value("environment", EnvVars{});
  c.architectures = d.value("architectures", std::vector<std::string>{"x86_64"});
  c.ephemeral_storage = d.value("ephemeral_storage", 512);
  c.tracing_mode = d.value("tracing_mode", "PassThrough");
  c.dead_letter_target = d.value("dead_letter_target", "");
  c.code_sha256 = d.value("code_sha256", "");
  c.code_sha256_hex = d.value("code_sha256_hex", "");
  c.code_size = d.value("code_size", std::int64_t{0});
  c.last_modified_ms = d.value("last_modified_ms", std::int64_t{0});
  c.revision_id = d.value("revision_id", "");
  c.tags = d.value("tags", Tags{});
  if (const auto it = d.find("reserved_concurrency"); it != d.end() && it->is_number_integer()) {
    c.reserved_concurrency = it->get<int>();
  }
  return c;
}

nlohmann::json to_document(const Alias& a) {
  return {{"function", a.function},
          {"name", a.name},
          {"function_version", a.function_version},
          {"description", a.description},
          {"additional_weights", a.additional_weights},
          {"revision_id", a.revision_id}};
}

Alias alias_from_document(const nlohmann::json& d) {
  Alias a;
  a.function = d.value("function", "");
  a.name = d.value("name", "");
  a.function_version = d.value("function_version", "");
  a.description = d.value("description", "");
  a.additional_weights = d.value("additional_weights", std::map<std::string, double>{});
  a.revision_id = d.value("revision_id", "");
  return a;
}

nlohmann::json to_document(const ProvisionedConcurrency& p) {
  return {{"function", p.function},
          {"qualifier", p.qualifier},
          {"requested", p.requested},
          {"last_modified_ms", p.last_modified_ms}};
}

ProvisionedConcurrency provisioned_from_document(const nlohmann::json& d) {
  ProvisionedConcurrency p;
  p.function = d.value("function", "");
  p.qualifier = d.value("qualifier", "");
  p.requested = d.value("requested", 0);
  p.last_modified_ms = d.value("last_modified_ms", std::int64_t{0});
  return p;
}

bool is_version_number(std::string_view text) {
  return !text.empty() && text.size() <= 10 && text.front() != '0' &&
         std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

}  // namespace nimbus::registry
