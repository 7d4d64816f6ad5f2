// An instance's stdout and stderr: read as it arrives (bounded), and taken
// for the log at each invocation's end.
#include <unistd.h>

#include <fmt/format.h>

#include "invoker/detail/instance.h"
#include "invoker/invoker.h"

namespace nimbus::invoker {

using detail::kUseTuple;

namespace {
// An instance's output held between two reads of it (one invocation, or its
// init): past kOutputMaxBytes the oldest is cut to leave kOutputKeptBytes,
// and the log says how much went.
constexpr std::size_t kOutputMaxBytes = 4u << 20;
constexpr std::size_t kOutputKeptBytes = 2u << 20;
}  // namespace

asio::awaitable<void> Invoker::read_output(std::shared_ptr<Instance> inst) {
  for (;;) {
    auto [ec] = co_await inst->output->async_wait(asio::posix::stream_descriptor::wait_read, kUseTuple);
    if (ec) co_return;
    std::lock_guard lock(inst->output_mu);
    char buf[16384];
    for (;;) {
      const ssize_t n = ::read(inst->output->native_handle(), buf, sizeof buf);
      if (n > 0) {
        inst->output_buffer.append(buf, static_cast<std::size_t>(n));
        // Bound what a chatty function can make us hold between invocations:
        // the last kOutputKeptBytes to kOutputMaxBytes of it are kept.
        if (inst->output_buffer.size() > kOutputMaxBytes) {
          const std::size_t cut = inst->output_buffer.size() - kOutputKeptBytes;
          inst->output_buffer.erase(0, cut);
          inst->output_dropped += cut;
        }
        continue;
      }
      if (n == 0) {
        boost::system::error_code ignored;
        inst->output->close(ignored);
        co_return;  // every writer is gone
      }
      break;  // EAGAIN
    }
  }
}

std::string Invoker::drain_output(Instance& inst) {
  std::lock_guard lock(inst.output_mu);
  if (inst.output && inst.output->is_open()) {
    char buf[16384];
    for (;;) {
      const ssize_t n = ::read(inst.output->native_handle(), buf, sizeof buf);
      if (n <= 0) break;
      inst.output_buffer.append(buf, static_cast<std::size_t>(n));
    }
  }
  std::string out = std::move(inst.output_buffer);
  inst.output_buffer.clear();
  if (inst.output_dropped > 0) {
    // Said where the loss is, so the log never looks whole when it is not.
    if (inst.metrics != nullptr) inst.metrics->log_bytes_dropped.add(inst.output_dropped);
    out.insert(0, fmt::format("[nimbus: {} bytes of output dropped]\n", inst.output_dropped));
    inst.output_dropped = 0;
  }
  return out;
}

}  // namespace nimbus::invoker
