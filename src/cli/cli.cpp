#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/spdlog.h>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/files.h"
#include "cli/control_client.h"
#include "cli/events_commands.h"
#include "cli/gateway_commands.h"
#include "cli/output.h"
#include "cli/package.h"
#include "daemon/daemon.h"
#include "http/server.h"
#include "http/types.h"

namespace nimbus::cli {
namespace {

using nlohmann::json;

constexpr const char* kDefaultRole = "arn:aws:iam::000000000000:role/nimbus-function";

struct DeployOptions {
  std::string path;
  std::string name;
  std::string runtime;
  std::string handler;
  std::string description;
  std::string role = kDefaultRole;
  int memory = 0;
  int timeout = 0;
  std::vector<std::string> env;
  bool publish = false;
  std::vector<std::string> http_routes;  // --http 'GET /hello'
  std::string url_auth;                  // --url none|iam: a function URL with that AuthType
};

base::Result<json> env_object(const std::vector<std::string>& pairs) {
  json vars = json::object();
  for (const auto& p : pairs) {
    const auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      return base::make_error(base::ErrorCode::kInvalidParameterValue,
                              fmt::format("--env '{}': expected KEY=VALUE", p));
    }
    vars[p.substr(0, eq)] = p.substr(eq + 1);
  }
  return vars;
}

std::string function_path(const std::string& name) {
  return "/2015-03-31/functions/" + http::percent_encode(name);
}

int deploy(ControlClient& client, const DeployOptions& o) {
  auto zip = load_package(o.path);
  if (!zip.ok()) return fail(zip.error().message);
  auto vars = env_object(o.env);
  if (!vars.ok()) return fail(vars.error().message);

  json config = json::object();
  if (!o.runtime.empty()) config["Runtime"] = o.runtime;
  if (!o.handler.empty()) config["Handler"] = o.handler;
  if (!o.description.empty()) config["Description"] = o.description;
  if (o.memory != 0) config["MemorySize"] = o.memory;
  if (o.timeout != 0) config["Timeout"] = o.timeout;
  if (!o.env.empty()) config["Environment"] = {{"Variables", *vars}};

  std::string zip_b64 = base::base64_encode(*zip);
  json result;
  std::string verb;
  auto existing = client.call(http::Verb::get, function_path(o.name) + "/configuration");
  if (existing.ok()) {
    // Exists: new code, then the configuration that was given.
    auto code = client.call(http::Verb::put, function_path(o.name) + "/code", json{{"ZipFile", std::move(zip_b64)}});
    if (!code.ok()) return fail(code.error().message);
    result = code->body;
    if (!config.empty()) {
      auto updated = client.call(http::Verb::put, function_path(o.name) + "/configuration", config);
      if (!updated.ok()) return fail(updated.error().message);
      result = updated->body;
    }
    verb = "updated";
  } else if (existing.error().code == base::ErrorCode::kResourceNotFound) {
    json create = config;
    create["FunctionName"] = o.name;
    create["Role"] = o.role;
    create["Code"] = {{"ZipFile", std::move(zip_b64)}};
    auto created = client.call(http::Verb::post, "/2015-03-31/functions", create);
    if (!created.ok()) return fail(created.error().message);
    result = created->body;
    verb = "created";
  } else {
    return fail(existing.error().message);
  }
  fmt::print("{} {} ({}, handler {}, {} MB, {} s, code {} bytes, sha256 {})\n", verb,
             result.value("FunctionName", o.name), result.value("Runtime", ""), result.value("Handler", ""),
             result.value("MemorySize", 0), result.value("Timeout", 0), result.value("CodeSize", 0),
             result.value("CodeSha256", ""));
  fmt::print("  arn: {}\n", result.value("FunctionArn", ""));
  if (o.publish) {
    auto published = client.call(http::Verb::post, function_path(o.name) + "/versions", json::object());
    if (!published.ok()) return fail(published.error().message);
    fmt::print("  published version {} ({})\n", published->body.value("Version", ""),
               published->body.value("FunctionArn", ""));
  }
  for (const auto& key : o.http_routes) {
    auto added = client.call(http::Verb::post, "/nimbus/v1/routes", json{{"RouteKey", key}, {"FunctionName", o.name}});
    if (!added.ok()) return fail("--http '" + key + "': " + added.error().message);
    fmt::print("  route: {}\n", key);
  }
  if (!o.url_auth.empty()) {
    // A function URL with the AuthType asked for: made, or brought to it.
    const json body = {{"AuthType", o.url_auth == "none" ? "NONE" : "AWS_IAM"}};
    const std::string path = "/2021-10-31/functions/" + http::percent_encode(o.name) + "/url";
    auto url = client.call(http::Verb::post, path, body);
    if (!url.ok() && url.error().code == base::ErrorCode::kResourceConflict) {
      url = client.call(http::Verb::put, path, body);
    }
    if (!url.ok()) return fail("--url: " + url.error().message);
    fmt::print("  url: {} (auth {})\n", url->body.value("FunctionUrl", ""), url->body.value("AuthType", ""));
  }
  return 0;
}

int publish(ControlClient& client, const std::string& name, const std::string& description) {
  json body = json::object();
  if (!description.empty()) body["Description"] = description;
  auto reply = client.call(http::Verb::post, function_path(name) + "/versions", body);
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("published {} version {} ({})\n", name, reply->body.value("Version", ""),
             reply->body.value("FunctionArn", ""));
  return 0;
}

struct AliasOptions {
  std::string function;
  std::string alias;
  std::string version;
  std::vector<std::string> weights;  // VERSION=WEIGHT
};

int alias_set(ControlClient& client, const AliasOptions& o) {
  json weights = json::object();
  for (const auto& w : o.weights) {
    const auto eq = w.find('=');
    char* end = nullptr;
    const double value = eq == std::string::npos ? -1 : std::strtod(w.c_str() + eq + 1, &end);
    if (eq == std::string::npos || eq == 0 || end == nullptr || *end != '\0') {
      return fail(fmt::format("--weight '{}': expected VERSION=WEIGHT with a weight between 0 and 1", w));
    }
    weights[w.substr(0, eq)] = value;
  }
  json body = {{"FunctionVersion", o.version}, {"RoutingConfig", {{"AdditionalVersionWeights", weights}}}};
  const std::string path = function_path(o.function) + "/aliases";
  auto updated = client.call(http::Verb::put, path + "/" + http::percent_encode(o.alias), body);
  if (!updated.ok() && updated.error().code == base::ErrorCode::kResourceNotFound) {
    body["Name"] = o.alias;
    updated = client.call(http::Verb::post, path, body);
  }
  if (!updated.ok()) return fail(updated.error().message);
  fmt::print("{} -> version {}{}\n", updated->body.value("AliasArn", ""), o.version,
             weights.empty() ? "" : " (+ " + weights.dump() + ")");
  return 0;
}

int alias_list(ControlClient& client, const std::string& function) {
  auto reply = client.call(http::Verb::get, function_path(function) + "/aliases");
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("{:<24} {:<10} {}\n", "ALIAS", "VERSION", "ROUTING");
  for (const auto& a : reply->body.value("Aliases", json::array())) {
    const json routing = a.contains("RoutingConfig") ? a["RoutingConfig"].value("AdditionalVersionWeights", json::object())
                                                     : json::object();
    fmt::print("{:<24} {:<10} {}\n", a.value("Name", ""), a.value("FunctionVersion", ""),
               routing.empty() ? "" : routing.dump());
  }
  return 0;
}

int alias_remove(ControlClient& client, const std::string& function, const std::string& alias) {
  auto reply = client.call(http::Verb::delete_, function_path(function) + "/aliases/" + http::percent_encode(alias));
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("deleted alias {} of {}\n", alias, function);
  return 0;
}

// `nimbus provision NAME:QUALIFIER COUNT`; 0 removes the configuration.
int provision(ControlClient& client, const std::string& target, int count) {
  const auto colon = target.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == target.size()) {
    return fail(fmt::format("'{}': expected NAME:VERSION or NAME:ALIAS (provisioned concurrency applies to a "
                            "published version or an alias)",
                            target));
  }
  const std::string path = "/2019-09-30/functions/" + http::percent_encode(target.substr(0, colon)) +
                           "/provisioned-concurrency?Qualifier=" + http::percent_encode(target.substr(colon + 1));
  if (count == 0) {
    auto reply = client.call(http::Verb::delete_, path);
    if (!reply.ok()) return fail(reply.error().message);
    fmt::print("{}: provisioned concurrency removed\n", target);
    return 0;
  }
  auto reply = client.call(http::Verb::put, path, json{{"ProvisionedConcurrentExecutions", count}});
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("{}: {} provisioned instances requested ({} ready; `nimbus describe` shows progress)\n", target,
             count, reply->body.value("AvailableProvisionedConcurrentExecutions", 0));
  return 0;
}

int list(ControlClient& client) {
  std::string marker;
  std::vector<json> rows;
  for (;;) {
    std::string target = "/2015-03-31/functions/?MaxItems=50";
    if (!marker.empty()) target += "&Marker=" + http::percent_encode(marker);
    auto page = client.call(http::Verb::get, target);
    if (!page.ok()) return fail(page.error().message);
    for (const auto& f : page->body.value("Functions", json::array())) rows.push_back(f);
    marker = page->body.value("NextMarker", "");
    if (marker.empty()) break;
  }
  if (rows.empty()) {
    fmt::print("no functions (deploy one with `nimbus deploy DIR --name N --runtime R --handler H`)\n");
    return 0;
  }
  fmt::print("{:<32} {:<16} {:>7} {:>8} {:>10}  {}\n", "NAME", "RUNTIME", "MEMORY", "TIMEOUT", "CODE", "LAST MODIFIED");
  for (const auto& f : rows) {
    fmt::print("{:<32} {:<16} {:>5}MB {:>7}s {:>10}  {}\n", f.value("FunctionName", ""), f.value("Runtime", ""),
               f.value("MemorySize", 0), f.value("Timeout", 0), f.value("CodeSize", 0),
               f.value("LastModified", ""));
  }
  return 0;
}

int describe(ControlClient& client, const std::string& name) {
  auto reply = client.call(http::Verb::get, function_path(name));
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("{}\n", reply->body.dump(2));
  return 0;
}

int remove(ControlClient& client, const std::string& name) {
  auto reply = client.call(http::Verb::delete_, function_path(name));
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("deleted {}\n", name);
  return 0;
}

int invoke(ControlClient& client, const std::string& name, const std::string& payload_arg) {
  std::string payload = payload_arg;
  if (!payload.empty() && payload[0] == '@') {
    auto data = base::read_file(payload.substr(1));
    if (!data.ok()) return fail("--payload " + payload + ": " + data.error().message);
    payload = std::move(*data);
  }
  if (payload.empty()) payload = "{}";
  auto parsed = json::parse(payload, nullptr, false);
  if (parsed.is_discarded()) return fail("--payload is not valid JSON: " + payload.substr(0, 80));
  auto reply = client.call_raw(http::Verb::post, function_path(name) + "/invocations", payload,
                               {{"X-Amz-Log-Type", "Tail"}});
  if (!reply.ok()) return fail(reply.error().message);
  // The result on stdout; the platform's report lines on stderr.
  fmt::print("{}\n", reply->raw);
  const std::string log = reply->headers.count("X-Amz-Log-Result") ? reply->headers.at("X-Amz-Log-Result") : "";
  if (auto decoded = base::base64_decode(log); decoded) {
    std::size_t pos = 0;
    while (pos < decoded->size()) {
      const auto end = decoded->find('\n', pos);
      const std::string line = decoded->substr(pos, end == std::string::npos ? std::string::npos : end - pos);
      if (line.starts_with("REPORT ")) fmt::print(stderr, "{}\n", line);
      if (end == std::string::npos) break;
      pos = end + 1;
    }
  }
  const bool function_error = reply->headers.count("X-Amz-Function-Error") > 0;
  return function_error ? 2 : 0;
}

// "10m", "2h", "30s", "1d" -> milliseconds; -1 if malformed.
std::int64_t parse_duration_ms(const std::string& text) {
  if (text.size() < 2) return -1;
  char* end = nullptr;
  const long long n = std::strtoll(text.c_str(), &end, 10);
  if (end != text.c_str() + text.size() - 1 || n < 0) return -1;
  switch (text.back()) {
    case 's': return n * 1000;
    case 'm': return n * 60 * 1000;
    case 'h': return n * 3600 * 1000;
    case 'd': return n * 86400 * 1000;
    default: return -1;
  }
}

int logs(ControlClient& client, const std::string& name, bool follow, const std::string& since) {
  std::int64_t since_ms = 0;
  if (!since.empty()) {
    const std::int64_t ago = parse_duration_ms(since);
    if (ago < 0) return fail("--since '" + since + "': expected a duration like 30s, 10m, 2h or 1d");
    base::SystemClock clock;
    since_ms = clock.now_ms() - ago;
  }
  std::uint64_t after = 0;
  for (;;) {
    auto reply = client.call(http::Verb::get, fmt::format("{}/logs?after={}&since={}&limit=1000",
                                                          "/nimbus/v1/functions/" + http::percent_encode(name), after,
                                                          since_ms));
    if (!reply.ok()) return fail(reply.error().message);
    for (const auto& line : reply->body.value("lines", json::array())) fmt::print("{}\n", line.value("text", ""));
    std::fflush(stdout);
    const auto next = reply->body.value("next", std::uint64_t{0});
    const bool more = next != after && reply->body.value("lines", json::array()).size() == 1000;
    after = next;
    if (more) continue;
    if (!follow) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

bool parse_listen(const std::string& text, std::string& host, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  host = text.substr(0, colon);
  try {
    const int p = std::stoi(text.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    port = static_cast<std::uint16_t>(p);
  } catch (const std::exception&) {
    return false;
  }
  return !host.empty();
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"nimbus: a self-hosted, Lambda-compatible serverless platform in one binary"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand
  ClientOptions client_options;
  std::string data_dir;
  app.add_option("--endpoint", client_options.endpoint,
                 "URL of the nimbus API (default: $NIMBUS_ENDPOINT, else the running daemon's "
                 "endpoints.json in the data directory, else http://127.0.0.1:9000)");
  app.add_option("--data-dir", data_dir,
                 "data directory (default ~/.local/share/nimbus, /var/lib/nimbus as root)");
  app.add_option("--region", client_options.region, "region the API signs for")->capture_default_str();

  // serve
  daemon::DaemonConfig serve_config;
  std::string listen = "127.0.0.1:9000";
  bool no_auth = false;
  auto* serve = app.add_subcommand("serve", "Run the nimbus daemon (Lambda API on --listen)");
  serve->add_option("--listen", listen, "address:port of the Lambda API (port 0 picks a free one)")
      ->capture_default_str();
  serve->add_option("--threads", serve_config.threads, "io threads, each with its own connections")->capture_default_str()->check(CLI::Range(1, 64));
  serve->add_flag("--insecure-no-auth", no_auth,
                  "accept unsigned requests (throw-away local setups only: anyone who can reach the "
                  "port can manage functions)");
  serve->add_option("--account-id", serve_config.registry.account_id, "12-digit account id in ARNs")
      ->capture_default_str();
  serve->add_option("--log-level", "trace|debug|info|warn|error (default info)");
  std::string log_file;
  std::size_t log_file_mb = 32;
  serve->add_option("--log-file", log_file,
                    "write the daemon's log to this file instead of stderr, rotated at --log-file-mb (3 old files kept)");
  serve->add_option("--log-file-mb", log_file_mb, "size at which --log-file is rotated (MiB)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  int keep_alive_s = 600;
  serve->add_option("--keep-alive", keep_alive_s, "seconds an idle instance stays warm at most")->capture_default_str()
      ->check(CLI::Range(1, 86400));
  double keep_alive_min_s = 60;
  serve->add_option("--keep-alive-min", keep_alive_min_s,
                    "seconds the adaptive keep-alive keeps an idle instance at least; it pre-warms across "
                    "predictable idle gaps longer than this")
      ->capture_default_str()->check(CLI::Range(0.05, 86400.0));
  std::string keep_alive_policy = "adaptive";
  serve->add_option("--keep-alive-policy", keep_alive_policy,
                    "adaptive: per-function windows from a histogram of idle times; fixed: always --keep-alive")
      ->capture_default_str()->check(CLI::IsMember({"adaptive", "fixed"}));
  serve->add_option("--sandbox-pool", serve_config.sandbox_pool,
                    "sandboxes kept ready ahead of time (namespaces, cgroup and the shared part of the root), "
                    "so that a cold start only adds the function's code; 0 builds each from scratch")
      ->capture_default_str()->check(CLI::Range(0, 64));
  serve->add_option("--primed-runtimes", serve_config.primed_runtimes,
                    "Python and Node runtime processes kept started ahead of time per interpreter, in sandboxes "
                    "of their own, so that a cold start skips the interpreter's start; 0 turns them off")
      ->capture_default_str()->check(CLI::Range(0, 16));
  serve->add_option("--fork-init-ms", serve_config.fork_init_ms,
                    "a Python function version whose init takes at least this many milliseconds gets a fork "
                    "template: its further instances are forked from an initialised one instead of running init "
                    "again (tag nimbus:fork=off|on per function); -1 turns forking off")
      ->capture_default_str()->check(CLI::Range(-1, 600000));
  serve->add_option("--concurrency", serve_config.registry.account_concurrency,
                    "account-wide concurrent executions")->capture_default_str()->check(CLI::Range(1, 100000));
  std::string cpu_limit = "proportional";
  serve->add_option("--cpu-limit", cpu_limit,
                    "proportional: an instance may use CPU in proportion to its memory, as on Lambda (one CPU at "
                    "1769 MB, 7.2% at 128 MB); none: no cap, only relative weights")
      ->capture_default_str()
      ->check(CLI::IsMember({"proportional", "none"}));
  serve->add_option("--max-parallel-starts", serve_config.max_parallel_starts,
                    "cold starts in flight at once (0: four per CPU); beyond it invocations wait in line for the "
                    "first instance of their version that becomes free")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  bool process_only = false;
  serve->add_flag("--no-isolation", process_only,
                  "run instances as plain processes (no namespaces, cgroups or uid switch); for hosts that "
                  "cannot isolate, printed loudly at start");

  serve->add_option("--events-time-scale", serve_config.events.time_scale,
                    "TEST ONLY: run asynchronous retry delays, event ages and schedules this many times faster "
                    "(1000: a minute passes in 60 ms)")
      ->capture_default_str()->check(CLI::Range(1.0, 1e6));
  serve->add_option("--events-concurrency", serve_config.events.max_in_flight,
                    "asynchronous invocations attempted at the same time")
      ->capture_default_str()->check(CLI::Range(1, 10000));
  std::int64_t keep_succeeded_s = serve_config.events.keep_succeeded.count();
  std::int64_t keep_failed_s = serve_config.events.keep_failed.count();
  serve->add_option("--events-keep-succeeded", keep_succeeded_s,
                    "seconds a succeeded asynchronous invocation stays listable (nimbus events) before it is deleted")
      ->capture_default_str()->check(CLI::Range(std::int64_t{0}, std::int64_t{366} * 86400));
  serve->add_option("--events-keep-failed", keep_failed_s,
                    "seconds a failed asynchronous invocation stays listable and redrivable before it is deleted")
      ->capture_default_str()->check(CLI::Range(std::int64_t{0}, std::int64_t{366} * 86400));

  std::string gateway_listen = "0.0.0.0:8080";
  std::string gateway_tls_cert;
  std::string gateway_tls_key;
  serve->add_option("--gateway-listen", gateway_listen, "address:port of the HTTP gateway (port 0 picks a free one)")
      ->capture_default_str();
  serve->add_option("--gateway-rate", serve_config.gateway.rate, "gateway-wide requests per second (token bucket)")
      ->capture_default_str()->check(CLI::Range(0.001, 1e9));
  serve->add_option("--gateway-burst", serve_config.gateway.burst, "gateway-wide burst (token bucket capacity)")
      ->capture_default_str()->check(CLI::Range(std::int64_t{1}, std::int64_t{1000000000}));
  int gateway_idle_s = 30;
  serve->add_option("--gateway-idle-timeout", gateway_idle_s,
                    "seconds a gateway connection may idle, or take to send its request headers")
      ->capture_default_str()->check(CLI::Range(1, 3600));
  serve->add_option("--gateway-max-connections", serve_config.gateway.max_connections,
                    "gateway connections open at once (0: no cap); more are answered 503 and closed")
      ->capture_default_str();
  serve->add_option("--gateway-max-connections-per-client", serve_config.gateway.max_connections_per_client,
                    "gateway connections open at once from one client address (0: no cap); more get 429")
      ->capture_default_str();
  serve->add_option("--api-max-connections", serve_config.api_max_connections,
                    "API connections open at once from clients other than instances (0: no cap)")
      ->capture_default_str();
  serve->add_option("--api-max-guest-connections", serve_config.api_max_guest_connections,
                    "API connections open at once from function instances together, beside --api-max-connections")
      ->capture_default_str();
  serve->add_option("--api-max-connections-per-client", serve_config.api_max_connections_per_client,
                    "API connections open at once from one client: an address, and on this host a uid, so "
                    "each instance has its own share (0: no cap)")
      ->capture_default_str();
  serve->add_option("--gateway-max-body-bytes", serve_config.gateway.max_body_bytes_in_flight,
                    "bytes of request bodies (each over 64 KiB) the gateway reads at once (0: no bound); more get 503")
      ->capture_default_str();
  serve->add_option("--api-max-body-bytes", serve_config.api_max_body_bytes_in_flight,
                    "bytes of request bodies (each over 64 KiB) the API reads at once (0: no bound); more get 503")
      ->capture_default_str();
  serve->add_option("--gateway-tls-cert", gateway_tls_cert,
                    "PEM certificate chain: the gateway speaks HTTPS only (needs --gateway-tls-key)");
  serve->add_option("--gateway-tls-key", gateway_tls_key,
                    "PEM private key of --gateway-tls-cert (unencrypted); SIGHUP reloads both files");
  int gateway_timeout_ms = 30000;
  serve->add_option("--gateway-integration-timeout", gateway_timeout_ms,
                    "milliseconds the gateway waits for a function before answering 503")
      ->capture_default_str()->check(CLI::Range(50, 30000));

  // deploy
  std::string target_name;
  DeployOptions deploy_options;
  auto* deploy_cmd = app.add_subcommand("deploy", "Create a function, or update its code and configuration");
  deploy_cmd->add_option("path", deploy_options.path, "directory (zipped for you) or .zip file")->required();
  deploy_cmd->add_option("--name,-n", deploy_options.name, "function name")->required();
  deploy_cmd->add_option("--runtime,-r", deploy_options.runtime,
                         "python3.11|python3.12|python3.13|nodejs18.x|nodejs20.x|nodejs22.x|provided.al2|"
                         "provided.al2023 (required on create)");
  deploy_cmd->add_option("--handler", deploy_options.handler, "module.function, file.export (required on create)");
  deploy_cmd->add_option("--memory,-m", deploy_options.memory, "memory in MB, 128-10240 (default 128)");
  deploy_cmd->add_option("--timeout,-t", deploy_options.timeout, "timeout in seconds, 1-900 (default 3)");
  deploy_cmd->add_option("--env,-e", deploy_options.env, "environment variable KEY=VALUE (repeatable)");
  deploy_cmd->add_option("--description", deploy_options.description, "description");
  deploy_cmd->add_option("--role", deploy_options.role, "execution role ARN (stored, not enforced)")
      ->capture_default_str();
  deploy_cmd->add_flag("--publish", deploy_options.publish, "publish a version of what was deployed");

  std::string description;
  auto* publish_cmd = app.add_subcommand("publish", "Publish the function's current code and configuration as a version");
  publish_cmd->add_option("name", target_name, "function name")->required();
  publish_cmd->add_option("--description", description, "the version's description");
  AliasOptions alias_options;
  auto* alias_cmd = app.add_subcommand("alias", "Manage aliases (named pointers to versions)");
  alias_cmd->require_subcommand(1);
  auto* alias_set_cmd = alias_cmd->add_subcommand("set", "Create or move an alias");
  alias_set_cmd->add_option("function", alias_options.function, "function name")->required();
  alias_set_cmd->add_option("alias", alias_options.alias, "alias name")->required();
  alias_set_cmd->add_option("version", alias_options.version, "version it points to ($LATEST or a number)")->required();
  alias_set_cmd->add_option("--weight", alias_options.weights,
                            "VERSION=WEIGHT: send that share (0-1) of invocations to a second version");
  auto* alias_ls_cmd = alias_cmd->add_subcommand("ls", "List a function's aliases");
  alias_ls_cmd->add_option("function", alias_options.function, "function name")->required();
  auto* alias_rm_cmd = alias_cmd->add_subcommand("rm", "Delete an alias");
  alias_rm_cmd->add_option("function", alias_options.function, "function name")->required();
  alias_rm_cmd->add_option("alias", alias_options.alias, "alias name")->required();
  std::string provision_target;
  int provision_count = 0;
  auto* provision_cmd = app.add_subcommand("provision", "Keep N instances of a version or alias initialised (0 removes)");
  provision_cmd->add_option("target", provision_target, "NAME:VERSION or NAME:ALIAS")->required();
  provision_cmd->add_option("count", provision_count, "instances")->required()->check(CLI::Range(0, 100000));
  deploy_cmd->add_option("--url", deploy_options.url_auth,
                         "give the function a URL (a Lambda function URL): none = anyone may call it, iam = "
                         "SigV4-signed requests only")
      ->check(CLI::IsMember({"none", "iam"}));
  deploy_cmd->add_option("--http", deploy_options.http_routes,
                         "also route this key to the function on the gateway, e.g. 'GET /hello' (repeatable)");

  // route, gateway
  RouteOptions route_options;
  auto* route_cmd = app.add_subcommand("route", "Manage the HTTP gateway's routes");
  route_cmd->require_subcommand(1);
  auto* route_add_cmd = route_cmd->add_subcommand("add", "Route a key such as 'GET /products/{id}' to a function");
  route_add_cmd->add_option("key", route_options.key, "route key: 'METHOD /path' (ANY, {var}, {proxy+}) or '$default'")
      ->required();
  route_add_cmd->add_option("--function,-f", route_options.function, "function name")->required();
  route_add_cmd->add_option("--qualifier", route_options.qualifier, "version or alias (default $LATEST)");
  route_add_cmd->add_option("--payload-format", route_options.payload_format, "event format: 2.0 (default) or 1.0")
      ->check(CLI::IsMember({"2.0", "1.0"}));
  auto* rate_opt = route_add_cmd->add_option("--rate", route_options.rate, "per-route requests per second")
                       ->check(CLI::PositiveNumber);
  auto* burst_opt = route_add_cmd->add_option("--burst", route_options.burst, "per-route burst")
                        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1000000000}));
  rate_opt->needs(burst_opt);
  burst_opt->needs(rate_opt);
  route_add_cmd->add_option("--authorizer", route_options.authorizer, "authorizer that must allow each request");
  route_add_cmd->add_option("--scope", route_options.scopes, "JWT: the token needs one of these scopes (repeatable)");
  route_add_cmd->add_option("--require", route_options.required_parameters,
                            "required parameter: method.request.querystring.NAME, .header.NAME or .path.NAME "
                            "(repeatable; 400 when missing)");
  route_add_cmd->add_option("--body-schema", route_options.body_schema,
                            "JSON Schema the body must match (JSON text or @file; 400 when it does not)");
  route_add_cmd->add_flag("--api-key-required", route_options.api_key_required,
                          "callers must send an x-api-key in a usage plan (403 without; see docs/gateway.md)");
  auto* route_ls_cmd = route_cmd->add_subcommand("ls", "List routes in the order they are matched");
  auto* route_rm_cmd = route_cmd->add_subcommand("rm", "Remove a route");
  route_rm_cmd->add_option("key", route_options.key, "route key as listed")->required();
  // authorizer
  AuthorizerOptions authorizer_options;
  auto* authorizer_cmd = app.add_subcommand("authorizer", "Manage the HTTP gateway's authorizers");
  authorizer_cmd->require_subcommand(1);
  auto* authorizer_add_cmd =
      authorizer_cmd->add_subcommand("add", "Create or replace an authorizer: a Lambda function (--function) or JWTs "
                                            "from an issuer (--issuer)");
  authorizer_add_cmd->add_option("name", authorizer_options.name, "authorizer name")->required();
  auto* auth_fn = authorizer_add_cmd->add_option("--function,-f", authorizer_options.function,
                                                 "Lambda authorizer: NAME or NAME:QUALIFIER");
  auto* auth_issuer = authorizer_add_cmd->add_option("--issuer", authorizer_options.issuer, "JWT: the iss to accept");
  auth_fn->excludes(auth_issuer);
  authorizer_add_cmd->add_option("--payload-format", authorizer_options.payload_format,
                                 "Lambda: event format 2.0 (default) or 1.0")
      ->check(CLI::IsMember({"2.0", "1.0"}));
  authorizer_add_cmd->add_flag("--simple", authorizer_options.simple,
                               "Lambda: the function answers {\"isAuthorized\": bool} (else an IAM policy)");
  authorizer_add_cmd->add_option("--identity-source", authorizer_options.identity_sources,
                                 "e.g. '$request.header.Authorization' (repeatable; 401 when one is missing)");
  authorizer_add_cmd->add_option("--ttl", authorizer_options.ttl, "Lambda: seconds to cache a decision (0-3600)")
      ->check(CLI::Range(0, 3600));
  authorizer_add_cmd->add_option("--audience", authorizer_options.audiences, "JWT: accepted aud/client_id (repeatable)");
  authorizer_add_cmd->add_option("--jwks", authorizer_options.jwks,
                                 "JWT: key set URL (https:// or http://) or file (default: the issuer's OpenID "
                                 "configuration)");
  authorizer_add_cmd->add_option("--jwks-ca-file", authorizer_options.jwks_ca_file,
                                 "JWT: PEM file (absolute path on the daemon's host) of CAs to trust, besides the "
                                 "system's, when fetching keys over https");
  auto* authorizer_ls_cmd = authorizer_cmd->add_subcommand("ls", "List authorizers");
  auto* authorizer_rm_cmd = authorizer_cmd->add_subcommand("rm", "Remove an authorizer no route uses");
  authorizer_rm_cmd->add_option("name", authorizer_options.name, "authorizer name")->required();

  // apikey, usage-plan
  std::string apikey_name, apikey_value;
  auto* apikey_cmd = app.add_subcommand("apikey", "Manage the HTTP gateway's API keys");
  apikey_cmd->require_subcommand(1);
  auto* apikey_add_cmd = apikey_cmd->add_subcommand("add", "Create an API key (prints a generated value once)");
  apikey_add_cmd->add_option("name", apikey_name, "key name (letters, digits, . - _)")->required();
  apikey_add_cmd->add_option("--value", apikey_value, "the key's value: 20-128 letters and digits (default: generated)");
  auto* apikey_ls_cmd = apikey_cmd->add_subcommand("ls", "List API keys (without their values)");
  auto* apikey_rm_cmd = apikey_cmd->add_subcommand("rm", "Remove an API key (refused from the next request on)");
  auto* apikey_enable_cmd = apikey_cmd->add_subcommand("enable", "Accept an API key again");
  auto* apikey_disable_cmd = apikey_cmd->add_subcommand("disable", "Refuse an API key (403) without removing it");
  for (auto* cmd : {apikey_rm_cmd, apikey_enable_cmd, apikey_disable_cmd}) {
    cmd->add_option("name", apikey_name, "key name")->required();
  }
  UsagePlanOptions plan_options;
  std::string plan_key;
  auto* plan_cmd = app.add_subcommand("usage-plan", "Manage the HTTP gateway's usage plans (throttle and quota per key)");
  plan_cmd->require_subcommand(1);
  auto* plan_add_cmd = plan_cmd->add_subcommand("add", "Create or replace a usage plan");
  plan_add_cmd->add_option("name", plan_options.name, "plan name (letters, digits, . - _)")->required();
  auto* plan_rate = plan_add_cmd->add_option("--rate", plan_options.rate, "requests per second per key");
  auto* plan_burst = plan_add_cmd->add_option("--burst", plan_options.burst, "burst per key");
  plan_rate->needs(plan_burst);
  plan_burst->needs(plan_rate);
  auto* plan_quota = plan_add_cmd->add_option("--quota", plan_options.quota, "requests per key per period");
  auto* plan_period = plan_add_cmd->add_option("--period", plan_options.period, "quota period: DAY, WEEK or MONTH (UTC)");
  plan_quota->needs(plan_period);
  auto* plan_ls_cmd = plan_cmd->add_subcommand("ls", "List usage plans and their keys");
  auto* plan_rm_cmd = plan_cmd->add_subcommand("rm", "Remove a usage plan that has no keys");
  plan_rm_cmd->add_option("name", plan_options.name, "plan name")->required();
  auto* plan_attach_cmd = plan_cmd->add_subcommand("attach", "Put an API key in a usage plan");
  auto* plan_detach_cmd = plan_cmd->add_subcommand("detach", "Take an API key out of a usage plan");
  for (auto* cmd : {plan_attach_cmd, plan_detach_cmd}) {
    cmd->add_option("plan", plan_options.name, "plan name")->required();
    cmd->add_option("key", plan_key, "API key name")->required();
  }

  // schedule
  ScheduleOptions schedule_options;
  auto* schedule_cmd = app.add_subcommand("schedule", "Invoke functions on rate, cron or one-time schedules");
  schedule_cmd->require_subcommand(1);
  auto* schedule_add_cmd = schedule_cmd->add_subcommand("add", "Create a schedule (see docs/schedules.md)");
  schedule_add_cmd->add_option("name", schedule_options.name, "schedule name (letters, digits, . - _)")->required();
  schedule_add_cmd->add_option("--function,-f", schedule_options.function, "target function, NAME or NAME:QUALIFIER")
      ->required();
  schedule_add_cmd->add_option("--expression,-e", schedule_options.expression,
                               "rate(5 minutes), cron(0 9 * * ? *) or at(2030-01-31T09:00:00)")
      ->required();
  schedule_add_cmd->add_option("--timezone", schedule_options.timezone, "IANA time zone of cron/at (default UTC)");
  schedule_add_cmd->add_option("--input", schedule_options.input,
                               "fixed JSON payload instead of the Scheduled Event");
  schedule_add_cmd->add_flag("--disabled", schedule_options.disabled, "create it disabled");
  auto* schedule_ls_cmd = schedule_cmd->add_subcommand("ls", "List schedules with their next fire time");
  auto* schedule_rm_cmd = schedule_cmd->add_subcommand("rm", "Remove a schedule");
  auto* schedule_enable_cmd = schedule_cmd->add_subcommand("enable", "Resume a schedule (from now; no catch-up)");
  auto* schedule_disable_cmd = schedule_cmd->add_subcommand("disable", "Pause a schedule");
  for (auto* cmd : {schedule_rm_cmd, schedule_enable_cmd, schedule_disable_cmd}) {
    cmd->add_option("name", schedule_options.name, "schedule name")->required();
  }

  // mapping
  MappingOptions mapping_options;
  auto* mapping_cmd = app.add_subcommand("mapping", "Feed a queue to a function in batches (event source mappings)");
  mapping_cmd->require_subcommand(1);
  auto* mapping_add_cmd = mapping_cmd->add_subcommand("add", "Create a mapping (see docs/queues.md)");
  mapping_add_cmd->add_option("--queue,-q", mapping_options.queue, "queue name or ARN")->required();
  mapping_add_cmd->add_option("--function,-f", mapping_options.function, "function, NAME or NAME:QUALIFIER")
      ->required();
  mapping_add_cmd->add_option("--batch-size", mapping_options.batch_size, "messages per batch (default 10)")
      ->check(CLI::Range(1, 10000));
  mapping_add_cmd->add_option("--window", mapping_options.window_s,
                              "seconds to gather a batch (0-300; needed for batches over 10)")
      ->check(CLI::Range(0, 300));
  mapping_add_cmd->add_flag("--report-failures", mapping_options.report_failures,
                            "the function answers batchItemFailures (ReportBatchItemFailures)");
  mapping_add_cmd->add_option("--max-concurrency", mapping_options.max_concurrency,
                              "at most this many batches at once (2-1000)")
      ->check(CLI::Range(2, 1000));
  mapping_add_cmd->add_flag("--disabled", mapping_options.disabled, "create it disabled");
  auto* mapping_ls_cmd = mapping_cmd->add_subcommand("ls", "List mappings with their last processing result");
  mapping_ls_cmd->add_option("--function,-f", mapping_options.function, "only this function's");
  auto* mapping_rm_cmd = mapping_cmd->add_subcommand("rm", "Remove a mapping");
  auto* mapping_enable_cmd = mapping_cmd->add_subcommand("enable", "Resume polling");
  auto* mapping_disable_cmd = mapping_cmd->add_subcommand("disable", "Stop polling (messages stay on the queue)");
  for (auto* cmd : {mapping_rm_cmd, mapping_enable_cmd, mapping_disable_cmd}) {
    cmd->add_option("uuid", mapping_options.id, "mapping UUID (nimbus mapping ls)")->required();
  }

  CorsOptions cors_options;
  auto* gateway_cmd = app.add_subcommand("gateway", "Configure the HTTP gateway");
  gateway_cmd->require_subcommand(1);
  auto* cors_cmd = gateway_cmd->add_subcommand("cors", "Show or set CORS (no options: show)");
  cors_cmd->add_option("--allow-origin", cors_options.origins, "allowed origin, '*' or 'https://*' (repeatable)");
  cors_cmd->add_option("--allow-methods", cors_options.methods, "allowed methods, e.g. GET POST or '*'");
  cors_cmd->add_option("--allow-headers", cors_options.headers, "allowed request headers");
  cors_cmd->add_option("--expose-headers", cors_options.expose, "response headers the browser may read");
  cors_cmd->add_option("--max-age", cors_options.max_age, "seconds a preflight may be cached (-1 to 86400)")
      ->check(CLI::Range(-1, 86400));
  cors_cmd->add_flag("--allow-credentials", cors_options.credentials, "allow cookies and credentials");
  cors_cmd->add_flag("--delete", cors_options.remove, "turn CORS off");

  auto* ls = app.add_subcommand("ls", "List functions");
  auto* describe_cmd = app.add_subcommand("describe", "Show a function's configuration and code location");
  describe_cmd->add_option("name", target_name, "function name or ARN")->required();
  auto* rm = app.add_subcommand("rm", "Delete a function");
  rm->add_option("name", target_name, "function name or ARN")->required();
  std::string payload;
  auto* invoke_cmd = app.add_subcommand("invoke", "Invoke a function and print its result (REPORT line on stderr)");
  invoke_cmd->add_option("name", target_name, "function name or ARN")->required();
  invoke_cmd->add_option("--payload,-p", payload, "event JSON, or @file to read it from a file (default {})");
  bool follow = false;
  std::string since;
  auto* logs_cmd = app.add_subcommand("logs", "Print a function's log (START/END/REPORT and its output)");
  logs_cmd->add_option("name", target_name, "function name")->required();
  logs_cmd->add_flag("--follow,-f", follow, "keep printing new lines");
  logs_cmd->add_option("--since", since, "only lines newer than this: 30s, 10m, 2h, 1d");

  EventsListOptions events_options;
  std::string event_id;
  auto* events_cmd = app.add_subcommand("events", "Asynchronous invocations: list, show, redrive");
  events_cmd->require_subcommand(1);
  auto* events_ls_cmd = events_cmd->add_subcommand("ls", "List asynchronous invocations, newest first");
  events_ls_cmd->add_option("--function,-f", events_options.function, "only this function's");
  events_ls_cmd->add_option("--state,-s", events_options.state, "only those in this state")
      ->check(CLI::IsMember({"pending", "running", "succeeded", "failed"}));
  events_ls_cmd->add_option("--limit,-n", events_options.limit, "at most this many")->capture_default_str()
      ->check(CLI::Range(1, 1000));
  auto* events_show_cmd = events_cmd->add_subcommand("show", "Show one asynchronous invocation");
  events_show_cmd->add_option("id", event_id, "invocation (request) id")->required();
  auto* events_redrive_cmd = events_cmd->add_subcommand("redrive", "Run a failed asynchronous invocation again");
  events_redrive_cmd->add_option("id", event_id, "invocation (request) id")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!data_dir.empty()) client_options.data_dir = data_dir;

  if (serve->parsed()) {
    serve_config.data_dir = data_dir;
    if (!parse_listen(listen, serve_config.api_host, serve_config.api_port)) {
      return fail(fmt::format("--listen '{}': expected ADDRESS:PORT", listen));
    }
    if (!parse_listen(gateway_listen, serve_config.gateway.host, serve_config.gateway.port)) {
      return fail(fmt::format("--gateway-listen '{}': expected ADDRESS:PORT", gateway_listen));
    }
    if (gateway_tls_cert.empty() != gateway_tls_key.empty()) {
      return fail(gateway_tls_cert.empty() ? "--gateway-tls-key needs --gateway-tls-cert"
                                           : "--gateway-tls-cert needs --gateway-tls-key");
    }
    if (!gateway_tls_cert.empty()) {
      serve_config.gateway.tls = http::TlsFiles{gateway_tls_cert, gateway_tls_key};
    }
    serve_config.gateway.idle_timeout = std::chrono::seconds(gateway_idle_s);
    serve_config.gateway.integration_timeout = std::chrono::milliseconds(gateway_timeout_ms);
    serve_config.auth = no_auth ? api::AuthMode::kNone : api::AuthMode::kSigV4;
    serve_config.registry.region = client_options.region;
    serve_config.keep_alive = std::chrono::seconds(keep_alive_s);
    serve_config.events.keep_succeeded = std::chrono::seconds(keep_succeeded_s);
    serve_config.events.keep_failed = std::chrono::seconds(keep_failed_s);
    serve_config.keep_alive_min = std::chrono::milliseconds(static_cast<std::int64_t>(keep_alive_min_s * 1000));
    serve_config.adaptive_keep_alive = keep_alive_policy == "adaptive";
    serve_config.cpu_cap = cpu_limit == "none" ? invoker::CpuCap::kNone : invoker::CpuCap::kProportionalToMemory;
    if (process_only) serve_config.isolation = sandbox::LauncherMode::kProcessOnly;
    if (!log_file.empty()) {
      try {
        // Bounded on disk: the file and three rotated ones, --log-file-mb each.
        // Flushed per line from info up (no flusher thread: the launcher is
        // forked before the daemon has threads).
        auto logger = spdlog::rotating_logger_mt("nimbus", log_file, log_file_mb << 20, 3);
        logger->flush_on(spdlog::level::info);
        spdlog::set_default_logger(std::move(logger));
      } catch (const spdlog::spdlog_ex& e) {
        return fail(fmt::format("--log-file {}: {}", log_file, e.what()));
      }
    }
    if (auto* level = serve->get_option("--log-level"); level->count() > 0) {
      spdlog::set_level(spdlog::level::from_str(level->as<std::string>()));
    }
    daemon::Daemon d(serve_config);
    if (auto started = d.start(); !started.ok()) return fail(started.error().message);
    d.run_until_signal();
    return 0;
  }

  auto client = ControlClient::connect(client_options);
  if (!client.ok()) return fail(client.error().message);
  if (deploy_cmd->parsed()) return deploy(*client, deploy_options);
  if (ls->parsed()) return list(*client);
  if (describe_cmd->parsed()) return describe(*client, target_name);
  if (rm->parsed()) return remove(*client, target_name);
  if (invoke_cmd->parsed()) return invoke(*client, target_name, payload);
  if (logs_cmd->parsed()) return logs(*client, target_name, follow, since);
  if (publish_cmd->parsed()) return publish(*client, target_name, description);
  if (alias_set_cmd->parsed()) return alias_set(*client, alias_options);
  if (alias_ls_cmd->parsed()) return alias_list(*client, alias_options.function);
  if (alias_rm_cmd->parsed()) return alias_remove(*client, alias_options.function, alias_options.alias);
  if (provision_cmd->parsed()) return provision(*client, provision_target, provision_count);
  if (route_add_cmd->parsed()) return route_add(*client, route_options);
  if (route_ls_cmd->parsed()) return route_list(*client);
  if (authorizer_add_cmd->parsed()) {
    if (authorizer_options.function.empty() && authorizer_options.issuer.empty()) {
      return fail("authorizer add needs --function (a Lambda authorizer) or --issuer (a JWT authorizer)");
    }
    return authorizer_add(*client, authorizer_options);
  }
  if (authorizer_ls_cmd->parsed()) return authorizer_list(*client);
  if (authorizer_rm_cmd->parsed()) return authorizer_remove(*client, authorizer_options.name);
  if (route_rm_cmd->parsed()) return route_remove(*client, route_options.key);
  if (cors_cmd->parsed()) return gateway_cors(*client, cors_options);
  if (apikey_add_cmd->parsed()) return apikey_add(*client, apikey_name, apikey_value);
  if (apikey_ls_cmd->parsed()) return apikey_list(*client);
  if (apikey_rm_cmd->parsed()) return apikey_remove(*client, apikey_name);
  if (apikey_enable_cmd->parsed()) return apikey_set_enabled(*client, apikey_name, true);
  if (apikey_disable_cmd->parsed()) return apikey_set_enabled(*client, apikey_name, false);
  if (plan_add_cmd->parsed()) {
    plan_options.throttle = plan_rate->count() > 0;
    plan_options.has_quota = plan_quota->count() > 0;
    return usage_plan_add(*client, plan_options);
  }
  if (plan_ls_cmd->parsed()) return usage_plan_list(*client);
  if (plan_rm_cmd->parsed()) return usage_plan_remove(*client, plan_options.name);
  if (plan_attach_cmd->parsed()) return usage_plan_attach(*client, plan_options.name, plan_key, true);
  if (plan_detach_cmd->parsed()) return usage_plan_attach(*client, plan_options.name, plan_key, false);
  if (events_ls_cmd->parsed()) return events_list(*client, events_options);
  if (events_show_cmd->parsed()) return events_show(*client, event_id);
  if (events_redrive_cmd->parsed()) return events_redrive(*client, event_id);
  if (mapping_add_cmd->parsed()) return mapping_add(*client, mapping_options);
  if (mapping_ls_cmd->parsed()) return mapping_list(*client, mapping_options.function);
  if (mapping_rm_cmd->parsed()) return mapping_remove(*client, mapping_options.id);
  if (mapping_enable_cmd->parsed()) return mapping_set_enabled(*client, mapping_options.id, true);
  if (mapping_disable_cmd->parsed()) return mapping_set_enabled(*client, mapping_options.id, false);
  if (schedule_add_cmd->parsed()) return schedule_add(*client, schedule_options);
  if (schedule_ls_cmd->parsed()) return schedule_list(*client);
  if (schedule_rm_cmd->parsed()) return schedule_remove(*client, schedule_options.name);
  if (schedule_enable_cmd->parsed()) return schedule_set_state(*client, schedule_options.name, "enable");
  if (schedule_disable_cmd->parsed()) return schedule_set_state(*client, schedule_options.name, "disable");
  return fail("no command given (see nimbus --help)");
}

}  // namespace nimbus::cli
