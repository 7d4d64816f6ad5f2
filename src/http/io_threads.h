#pragma once
// IoThreads: the daemon's io threads as one io_context per thread. Each
// accepted connection is placed on one of them (round robin) and stays there,
// so a request is read, handled and answered on one thread without a strand,
// and a thread wakes another only when work really crosses (an event handed
// to an instance whose Runtime API connection lives on the other thread).
//
// Why not one io_context run by every thread: its shared queue wakes an idle
// thread for nearly every handler it queues. On a small machine those
// wake-ups (a futex and an inter-processor interrupt each) cost more CPU than
// the second thread gives back; see docs/benchmarks.md.
//
// Context 0 is the caller's `main` io_context (timers, dispatchers and every
// part built on its executor live there); it is run by whoever runs it
// (Daemon::run). start() runs each further context on a thread of its own.
// Threads: a placer may be called from any thread; start()/stop() from the
// owner's thread only.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace nimbus::http {

class IoThreads {
 public:
  // `threads` counts main's thread too (>= 1; 1 means main alone).
  IoThreads(boost::asio::io_context& main, unsigned threads);
  ~IoThreads();
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  // A picker for ServerConfig::connection_executor: each call gives the next
  // context, round robin, with a count of its own, so every server spreads
  // its connections evenly (borrows this).
  [[nodiscard]] std::function<boost::asio::any_io_executor()> placer();
  [[nodiscard]] unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

  // Runs every context but main on a thread of its own until stop().
  void start();
  // Stops and joins the workers (after the servers stopped and main ran the
  // unwinding of their connections: the workers keep running until here).
  // Idempotent; the destructor calls it.
  void stop();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  struct Worker {
    boost::asio::io_context io{1};  // run by one thread: its own posts wake nobody
    std::unique_ptr<Guard> guard;
    std::thread thread;
  };

  boost::asio::io_context& main_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

// Runs `io` until it is stopped; a handler that throws is logged and the loop
// goes on (nothing a request does may end the daemon).
void run_io(boost::asio::io_context& io);

}  // namespace nimbus::http
