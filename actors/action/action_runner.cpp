#include "actors/action/action_runner.hpp"

#include "src/http/client.hpp"

namespace parley::actors {

action_runner::action_runner(std::size_t threads) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, threads); ++i)
    threads_.emplace_back([this] { loop(); });
}

action_runner::~action_runner() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void action_runner::run(bot::v1::ActionRequest request,
                        std::function<void(bot::v1::ActionResult)> done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.emplace_back([request = std::move(request), done = std::move(done)] {
      http::client_request r;
      r.method = request.method().empty() ? "GET" : request.method();
      r.url = request.url();
      for (const auto& h : request.headers()) r.headers.emplace_back(h.name(), h.value());
      r.body = request.body();
      if (!r.body.empty() && http::find_header(r.headers, "Content-Type") == nullptr)
        r.headers.emplace_back("Content-Type", "application/json");
      uint32_t ms =
          request.timeout_ms() == 0 ? 10000 : std::min<uint32_t>(request.timeout_ms(), 10000);
      r.timeout = std::chrono::milliseconds(ms);
      auto res = http::fetch(r);
      bot::v1::ActionResult out;
      if (res) {
        out.set_ok(true);
        out.set_status(res->status);
        out.set_body(std::move(res->body));
      } else {
        out.set_ok(false);
        out.set_error(res.err().message);
      }
      done(std::move(out));
    });
  }
  cv_.notify_one();
}

void action_runner::loop() {
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace parley::actors
