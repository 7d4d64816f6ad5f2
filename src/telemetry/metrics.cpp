#include "telemetry/metrics.h"

#include <fmt/format.h>

namespace nimbus::telemetry {

const std::vector<double>& duration_buckets() {
  static const std::vector<double> kBuckets = {0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};
  return kBuckets;
}

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(new std::atomic<std::uint64_t>[bounds.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double value_ms) {
  std::size_t i = 0;
  while (i < bounds_.size() && value_ms > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<std::uint64_t>(value_ms * 1000.0), std::memory_order_relaxed);
}

Registry::Family& Registry::family(const std::string& name, Kind kind, const std::string& help) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.kind = kind;
    it->second.help = help;
  }
  return it->second;
}

Counter& Registry::counter(const std::string& name, const std::string& help, const std::string& label_value) {
  std::lock_guard lock(mu_);
  auto& slot = family(name, Kind::kCounter, help).counters[label_value];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const std::string& label_value) {
  std::lock_guard lock(mu_);
  auto& slot = family(name, Kind::kGauge, help).gauges[label_value];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, const std::string& label_value) {
  std::lock_guard lock(mu_);
  auto& slot = family(name, Kind::kHistogram, help).histograms[label_value];
  if (!slot) slot = std::make_unique<Histogram>(duration_buckets());
  return *slot;
}

Counter& Registry::labelled_counter(const std::string& name, const std::string& help, const std::string& label_name,
                                   const std::string& label_value) {
  std::lock_guard lock(mu_);
  Family& f = family(name, Kind::kCounter, help);
  f.label_name = label_name;
  auto& slot = f.counters[label_value];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

namespace {
std::string labels(const std::string& label_name, const std::string& value, const std::string& extra = {}) {
  std::string out;
  if (!value.empty()) out = fmt::format("{}=\"{}\"", label_name, value);
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out.empty() ? std::string() : "{" + out + "}";
}
}  // namespace

std::string Registry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.kind == Kind::kCounter ? "counter" : f.kind == Kind::kGauge ? "gauge" : "histogram";
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, type);
    for (const auto& [label, c] : f.counters) fmt::format_to(std::back_inserter(out), "{}{} {}\n", name, labels(f.label_name, label), c->value());
    for (const auto& [label, g] : f.gauges) fmt::format_to(std::back_inserter(out), "{}{} {}\n", name, labels(f.label_name, label), g->value());
    for (const auto& [label, h] : f.histograms) {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < h->bounds_.size(); ++i) {
        cumulative += h->buckets_[i].load(std::memory_order_relaxed);
        fmt::format_to(std::back_inserter(out), "{}_bucket{} {}\n", name,
                       labels(f.label_name, label, fmt::format("le=\"{}\"", h->bounds_[i])), cumulative);
      }
      cumulative += h->buckets_[h->bounds_.size()].load(std::memory_order_relaxed);
      fmt::format_to(std::back_inserter(out), "{}_bucket{} {}\n", name, labels(f.label_name, label, "le=\"+Inf\""), cumulative);
      fmt::format_to(std::back_inserter(out), "{}_sum{} {:.3f}\n", name, labels(f.label_name, label),
                     static_cast<double>(h->sum_micros_.load()) / 1000.0);
      fmt::format_to(std::back_inserter(out), "{}_count{} {}\n", name, labels(f.label_name, label), h->count());
    }
  }
  return out;
}

}  // namespace nimbus::telemetry
