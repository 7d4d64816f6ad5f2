#pragma once
// A small Prometheus registry: counters, gauges and histograms, each a family
// with one optional label ("function"). Updating is lock-free for an existing
// series (atomics) and takes a mutex only to create a series. render() writes
// the Prometheus text exposition format. Thread-safe; owned by the daemon.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace nimbus::telemetry {

class Counter {
 public:
  void add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void add(std::int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  void set(std::int64_t n) { value_.store(n, std::memory_order_relaxed); }
  [[nodiscard]] std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

// Buckets in milliseconds.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void observe(double value_ms);
  [[nodiscard]] std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  friend class Registry;
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // cumulative counts are built at render
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_micros_{0};
};

class Registry {
 public:
  // Returns the series of `name` for `label_value` (empty: no label), creating
  // it on first use. References stay valid for the registry's lifetime.
  Counter& counter(const std::string& name, const std::string& help, const std::string& label_value = {});
  Gauge& gauge(const std::string& name, const std::string& help, const std::string& label_value = {});
  Histogram& histogram(const std::string& name, const std::string& help, const std::string& label_value = {});
  // A counter family whose one label is called `label_name` instead of
  // "function" (e.g. the gateway's requests by status class).
  Counter& labelled_counter(const std::string& name, const std::string& help, const std::string& label_name,
                            const std::string& label_value);

  [[nodiscard]] std::string render() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Family {
    Kind kind;
    std::string help;
    std::string label_name = "function";
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family& family(const std::string& name, Kind kind, const std::string& help);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // GUARDED_BY(mu_)
};

// Bucket bounds (ms) for invocation and init durations.
const std::vector<double>& duration_buckets();

}  // namespace nimbus::telemetry
