#include "invoker/keep_alive.h"

#include <algorithm>
#include <cmath>

namespace nimbus::invoker {

namespace {

using std::chrono::milliseconds;

// Edge i is kFirstEdge * ratio^i; edge kBins is kLastEdge.
double log_ratio() {
  static const double r = std::log(static_cast<double>(IdleHistogram::kLastEdge.count()) /
                                   static_cast<double>(IdleHistogram::kFirstEdge.count())) /
                          IdleHistogram::kBins;
  return r;
}

milliseconds edge(int i) {
  return milliseconds(static_cast<std::int64_t>(
      std::llround(static_cast<double>(IdleHistogram::kFirstEdge.count()) * std::exp(log_ratio() * i))));
}

milliseconds scaled(milliseconds d, double factor) {
  return milliseconds(static_cast<std::int64_t>(static_cast<double>(d.count()) * factor));
}

}  // namespace

int IdleHistogram::bin_of(milliseconds idle) {
  if (idle < kFirstEdge) return 0;
  if (idle >= kLastEdge) return kBins;
  const double x = std::log(static_cast<double>(idle.count()) / static_cast<double>(kFirstEdge.count()));
  return std::clamp(static_cast<int>(x / log_ratio()), 0, kBins - 1);
}

milliseconds IdleHistogram::lower_edge(int bin) { return bin <= 0 ? milliseconds(0) : edge(bin); }

milliseconds IdleHistogram::upper_edge(int bin) { return bin >= kBins - 1 ? kLastEdge : edge(bin + 1); }

void IdleHistogram::record(milliseconds idle) {
  const int bin = bin_of(idle);
  if (bin == kBins) {
    ++beyond_;
  } else {
    ++counts_[static_cast<std::size_t>(bin)];
  }
  if (++samples_ >= kHalveAt) {
    samples_ = 0;
    for (auto& c : counts_) {
      c = static_cast<std::uint16_t>(c / 2);
      samples_ += c;
    }
    beyond_ /= 2;
    samples_ += beyond_;
  }
}

int IdleHistogram::quantile_bin(double q) const {
  if (samples_ == 0) return 0;
  // The smallest bin whose cumulative count reaches q of the samples.
  const auto want = static_cast<std::uint32_t>(std::ceil(q * samples_));
  std::uint32_t seen = 0;
  for (int i = 0; i < kBins; ++i) {
    seen += counts_[static_cast<std::size_t>(i)];
    if (seen >= want && seen > 0) return i;
  }
  return kBins;
}

KeepAliveWindows decide_keep_alive(const IdleHistogram& idle, const KeepAlivePolicy& p) {
  KeepAliveWindows fixed{p.fixed, milliseconds(0), false};
  if (idle.samples() < p.min_samples) return fixed;
  if (static_cast<double>(idle.beyond()) > p.max_beyond_ratio * idle.samples()) return fixed;

  KeepAliveWindows w;
  w.adaptive = true;
  const int tail_bin = idle.quantile_bin(0.99);
  const milliseconds tail = tail_bin >= IdleHistogram::kBins ? p.fixed : IdleHistogram::upper_edge(tail_bin);
  w.keep_alive = std::clamp(scaled(tail, p.tail_margin), std::min(p.floor, p.fixed), p.fixed);

  const milliseconds head = IdleHistogram::lower_edge(idle.quantile_bin(0.05));
  const milliseconds prewarm = scaled(head, p.head_margin);
  // Worth it only across long gaps, and only when the instance would be kept
  // past the moment it is started.
  if (head >= p.prewarm_from && prewarm < w.keep_alive) w.prewarm = prewarm;
  return w;
}

}  // namespace nimbus::invoker
