#pragma once
// Every metric the gateway reports, declared in one place and looked up once
// at construction, so a request only touches atomics.

#include "telemetry/metrics.h"

namespace nimbus::gateway {

struct GatewayMetrics {
  explicit GatewayMetrics(telemetry::Registry& r)
      : responses_2xx(by_class(r, "2xx")),
        responses_3xx(by_class(r, "3xx")),
        responses_4xx(by_class(r, "4xx")),
        responses_5xx(by_class(r, "5xx")),
        throttled(r.counter("nimbus_gateway_throttled_total", "Gateway requests refused by a rate limit (429)")),
        integration_errors(r.counter("nimbus_gateway_integration_errors_total",
                                     "Gateway requests whose function failed, timed out or answered unusably")),
        authorizer_denied(r.labelled_counter("nimbus_gateway_authorizer_total",
                                             "Gateway authorizer decisions by outcome", "outcome", "denied")),
        authorizer_allowed(r.labelled_counter("nimbus_gateway_authorizer_total",
                                              "Gateway authorizer decisions by outcome", "outcome", "allowed")),
        authorizer_errors(r.labelled_counter("nimbus_gateway_authorizer_total",
                                             "Gateway authorizer decisions by outcome", "outcome", "error")),
        authorizer_cache_hits(r.counter("nimbus_gateway_authorizer_cache_hits_total",
                                        "Lambda authorizer decisions answered from the cache")),
        validation_failures(r.counter("nimbus_gateway_validation_failures_total",
                                      "Gateway requests refused by a route's request validation (400)")),
        api_key_missing(by_key_refusal(r, "missing")),
        api_key_invalid(by_key_refusal(r, "invalid")),
        api_key_throttled(by_key_refusal(r, "throttled")),
        api_key_quota_exceeded(by_key_refusal(r, "quota")),
        tls_handshake_failures(r.counter("nimbus_gateway_tls_handshake_failures_total",
                                         "Gateway connections closed because their TLS handshake failed or "
                                         "timed out")),
        latency(r.histogram("nimbus_gateway_request_duration_ms", "Gateway request latency, read to response")),
        integration_latency(r.histogram("nimbus_gateway_integration_duration_ms",
                                        "Time the gateway waited for the function")) {}

  telemetry::Counter& for_status(unsigned status) {
    if (status >= 500) return responses_5xx;
    if (status >= 400) return responses_4xx;
    if (status >= 300) return responses_3xx;
    return responses_2xx;
  }

  telemetry::Counter& responses_2xx;
  telemetry::Counter& responses_3xx;
  telemetry::Counter& responses_4xx;
  telemetry::Counter& responses_5xx;
  telemetry::Counter& throttled;
  telemetry::Counter& integration_errors;
  telemetry::Counter& authorizer_denied;   // 401 and 403
  telemetry::Counter& authorizer_allowed;
  telemetry::Counter& authorizer_errors;   // 500: the authorizer failed or answered garbage
  telemetry::Counter& authorizer_cache_hits;
  telemetry::Counter& validation_failures;
  telemetry::Counter& api_key_missing;         // 403: no x-api-key
  telemetry::Counter& api_key_invalid;         // 403: unknown, disabled or in no usage plan
  telemetry::Counter& api_key_throttled;       // 429: over the plan's rate
  telemetry::Counter& api_key_quota_exceeded;  // 429: over the plan's quota
  telemetry::Counter& tls_handshake_failures;
  telemetry::Histogram& latency;
  telemetry::Histogram& integration_latency;

 private:
  static telemetry::Counter& by_class(telemetry::Registry& r, const char* cls) {
    return r.labelled_counter("nimbus_gateway_requests_total", "Gateway requests by response status class", "class",
                              cls);
  }
  static telemetry::Counter& by_key_refusal(telemetry::Registry& r, const char* reason) {
    return r.labelled_counter("nimbus_gateway_api_key_refused_total",
                              "Gateway requests refused by the API key check, by reason", "reason", reason);
  }
};

}  // namespace nimbus::gateway
