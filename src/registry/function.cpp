#include "registry/function.h"

namespace nimbus::registry {

nlohmann::json to_document(const FunctionConfig& c) {
  return {
      {"name", c.name},
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

}  // namespace nimbus::registry
