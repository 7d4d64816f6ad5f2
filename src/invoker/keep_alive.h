#pragma once
// The adaptive keep-alive policy, after the hybrid histogram policy of
// "Serverless in the Wild" (Shahrad et al., ATC'20), scaled to one machine:
// per function, a histogram of idle times — from the moment nothing of the
// function runs to the next arrival — decides
//   - keep-alive: how long an idle instance stays warm (the 99th percentile
//     idle time plus a margin, at least a minute, never longer than the
//     configured keep-alive),
//   - pre-warm: for functions that are idle for long, predictable stretches
//     (the 5th percentile idle time is at least a minute), release idle
//     instances at once and start one just before the next arrival is due.
// Too few samples, or a pattern longer than the histogram, keep the
// configured fixed keep-alive. Pure and small: 88 bytes per function, a
// decision costs well under a microsecond (bench/micro).

#include <array>
#include <chrono>
#include <cstdint>

namespace nimbus::invoker {

class IdleHistogram {
 public:
  // Log-spaced bins from kFirstEdge to kLastEdge (4 hours), ~35 % wide.
  static constexpr int kBins = 40;
  static constexpr std::chrono::milliseconds kFirstEdge{100};
  static constexpr std::chrono::milliseconds kLastEdge{4 * 60 * 60 * 1000};
  // Every this many samples the counts are halved: recent behaviour weighs more.
  static constexpr std::uint32_t kHalveAt = 2048;

  void record(std::chrono::milliseconds idle);

  [[nodiscard]] std::uint32_t samples() const { return samples_; }
  // Samples longer than the last edge.
  [[nodiscard]] std::uint32_t beyond() const { return beyond_; }
  // The bin holding quantile q (0 < q <= 1) of the samples; kBins when it
  // falls beyond the last edge.
  [[nodiscard]] int quantile_bin(double q) const;

  [[nodiscard]] static std::chrono::milliseconds lower_edge(int bin);
  [[nodiscard]] static std::chrono::milliseconds upper_edge(int bin);
  [[nodiscard]] static int bin_of(std::chrono::milliseconds idle);

 private:
  std::array<std::uint16_t, kBins> counts_{};
  std::uint32_t samples_ = 0;
  std::uint32_t beyond_ = 0;
};

struct KeepAlivePolicy {
  std::chrono::milliseconds fixed{10 * 60 * 1000};  // `nimbus serve --keep-alive`: the upper bound
  std::uint32_t min_samples = 8;                    // fewer: fixed
  double max_beyond_ratio = 0.5;                    // more idle times past the histogram: fixed
  std::chrono::milliseconds floor{60 * 1000};       // never shorter: a warm minute costs less than a cold start
  std::chrono::milliseconds prewarm_from{60 * 1000};  // pre-warm only across idle times this long
  double head_margin = 0.85;                        // pre-warm this much before the 5th percentile
  double tail_margin = 1.15;                        // keep this much past the 99th percentile
};

struct KeepAliveWindows {
  // Idle instances stay warm this long.
  std::chrono::milliseconds keep_alive{0};
  // > 0: idle instances are released at once, and one is started this long
  // after the function went idle (if it is still idle then).
  std::chrono::milliseconds prewarm{0};
  bool adaptive = false;  // false: not enough history, `keep_alive` is the fixed window
};

[[nodiscard]] KeepAliveWindows decide_keep_alive(const IdleHistogram& idle, const KeepAlivePolicy& policy);

}  // namespace nimbus::invoker
