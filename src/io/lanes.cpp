#include "src/io/lanes.hpp"

#include <pthread.h>

#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace parley::io {

namespace net = boost::asio;

namespace {
thread_local int current_lane = -1;
}

struct lanes::impl {
  std::string name;
  std::vector<std::unique_ptr<net::io_context>> iocs;
  // Keep a lane's run() going while it has nothing to do.
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
  bool started = false;
  bool stopped = false;
};

lanes::lanes(std::size_t n, std::string name) : impl_(std::make_unique<impl>()) {
  impl_->name = std::move(name);
  if (n == 0) n = 1;
  for (std::size_t i = 0; i < n; ++i) {
    // One thread per io_context: Asio may skip its internal locking.
    impl_->iocs.push_back(std::make_unique<net::io_context>(1));
    impl_->guards.push_back(net::make_work_guard(*impl_->iocs.back()));
  }
}

lanes::~lanes() { stop(); }

std::size_t lanes::size() const { return impl_->iocs.size(); }

net::io_context& lanes::at(std::size_t i) { return *impl_->iocs.at(i); }

int lanes::current() { return current_lane; }

void lanes::start() {
  if (impl_->started) return;
  impl_->started = true;
  for (std::size_t i = 0; i < impl_->iocs.size(); ++i) {
    impl_->threads.emplace_back([this, i] {
      current_lane = static_cast<int>(i);
      std::string n = impl_->name + "-" + std::to_string(i);
      n.resize(std::min<std::size_t>(n.size(), 15));
      pthread_setname_np(pthread_self(), n.c_str());
      impl_->iocs[i]->run();
    });
  }
}

void lanes::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->guards.clear();
  for (auto& ioc : impl_->iocs) ioc->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace parley::io
