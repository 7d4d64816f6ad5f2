#include "http/io_threads.h"

#include <atomic>
#include <exception>

#include <spdlog/spdlog.h>

namespace nimbus::http {

void run_io(boost::asio::io_context& io) {
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("nimbus: unhandled exception in an io handler: {}", e.what());
    }
  }
}

IoThreads::IoThreads(boost::asio::io_context& main, unsigned threads) : main_(main) {
  for (unsigned i = 1; i < threads; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->guard = std::make_unique<Guard>(worker->io.get_executor());
    workers_.push_back(std::move(worker));
  }
}

IoThreads::~IoThreads() { stop(); }

std::function<boost::asio::any_io_executor()> IoThreads::placer() {
  auto count = std::make_shared<std::atomic<unsigned>>(0);
  return [this, count] {
    const unsigned i = count->fetch_add(1, std::memory_order_relaxed) % size();
    return i == 0 ? boost::asio::any_io_executor(main_.get_executor())
                  : boost::asio::any_io_executor(workers_[i - 1]->io.get_executor());
  };
}

void IoThreads::start() {
  for (auto& w : workers_) {
    if (!w->thread.joinable()) w->thread = std::thread([io = &w->io] { run_io(*io); });
  }
}

void IoThreads::stop() {
  for (auto& w : workers_) {
    w->guard.reset();
    w->io.stop();
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace nimbus::http
