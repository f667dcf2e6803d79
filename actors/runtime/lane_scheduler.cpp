// The "lanes" scheduler: a CAF 0.17 coordinator whose workers are io::lanes.
//
// CAF's coordinators run their own threads (work stealing polls, with sleeps, when
// idle; work sharing waits on a condition variable). This one has no threads of its
// own: resuming an actor is an Asio handler on a lane, next to the lane's sockets.
// Delayed messages still need CAF's clock thread, which this coordinator runs.

#include "actors/runtime/lane_scheduler.hpp"

#include <future>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/detail/set_thread_name.hpp>
#include <caf/detail/thread_safe_actor_clock.hpp>
#include <caf/execution_unit.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include "src/io/lanes.hpp"

namespace parley::actors {
namespace {

class lane_coordinator;

/// The execution unit of one lane: what an actor running there calls to make another
/// actor ready.
class lane_unit : public caf::execution_unit {
 public:
  lane_unit(caf::actor_system* sys, lane_coordinator* parent, std::size_t lane)
      : caf::execution_unit(sys), parent_(parent), lane_(lane) {}
  void exec_later(caf::resumable* job) override;

 private:
  lane_coordinator* parent_;
  std::size_t lane_;
};

class lane_coordinator : public caf::scheduler::abstract_coordinator {
 public:
  lane_coordinator(caf::actor_system& sys, io::lanes* lanes)
      : caf::scheduler::abstract_coordinator(sys), lanes_(lanes) {}

  void init(caf::actor_system_config& cfg) override {
    caf::scheduler::abstract_coordinator::init(cfg);
    num_workers_ = lanes_->size();
    units_.reserve(lanes_->size());
    for (std::size_t i = 0; i < lanes_->size(); ++i)
      units_.push_back(std::make_unique<lane_unit>(&system(), this, i));
  }

  void start() override {
    clock_thread_ = std::thread([this] {
      caf::detail::set_thread_name("caf.clock");
      clock_.run_dispatch_loop();
    });
    caf::scheduler::abstract_coordinator::start();  // CAF's utility actors
  }

  void stop() override {
    stop_actors();
    clock_.cancel_dispatch_loop();
    clock_thread_.join();
    // The actors are done, but a lane may still be inside the handler that resumed one
    // of them for the last time (it releases the actor after the system saw it finish).
    // A barrier per lane: whatever was posted before it has run once it runs.
    for (std::size_t i = 0; i < lanes_->size(); ++i) {
      if (io::lanes::current() == static_cast<int>(i)) continue;
      std::promise<void> passed;
      auto f = passed.get_future();
      boost::asio::post(lanes_->at(i), [&passed] { passed.set_value(); });
      f.wait();
    }
  }

  void enqueue(caf::resumable* job) override {
    int lane = io::lanes::current();
    post(lane >= 0 ? static_cast<std::size_t>(lane)
                   : next_worker_.fetch_add(1, std::memory_order_relaxed) % units_.size(),
         job);
  }

  caf::actor_clock& clock() noexcept override { return clock_; }

  /// Resumes `job` on `lane` (the job's reference moves to the handler).
  void post(std::size_t lane, caf::resumable* job) {
    boost::asio::post(lanes_->at(lane), run_job{this, lane, job});
  }

 private:
  /// The handler that resumes one job. A handler destroyed without running (its lane
  /// stopped) still drops the job's reference.
  struct run_job {
    lane_coordinator* self;
    std::size_t lane;
    caf::resumable* job;
    run_job(lane_coordinator* s, std::size_t l, caf::resumable* j) : self(s), lane(l), job(j) {}
    run_job(run_job&& o) noexcept : self(o.self), lane(o.lane), job(o.job) { o.job = nullptr; }
    run_job(const run_job&) = delete;
    run_job& operator=(const run_job&) = delete;
    run_job& operator=(run_job&&) = delete;
    ~run_job() {
      if (job != nullptr) caf::intrusive_ptr_release(job);
    }
    void operator()() {
      auto* j = job;
      job = nullptr;
      switch (j->resume(self->units_[lane].get(), self->max_throughput_)) {
        case caf::resumable::resume_later:
          // It used its share: behind whatever else waits on this lane, reference kept.
          self->post(lane, j);
          break;
        case caf::resumable::done:
        case caf::resumable::awaiting_message:
        case caf::resumable::shutdown_execution_unit:
          caf::intrusive_ptr_release(j);
          break;
      }
    }
  };

  io::lanes* lanes_;
  std::vector<std::unique_ptr<lane_unit>> units_;
  caf::detail::thread_safe_actor_clock clock_;
  std::thread clock_thread_;
};

void lane_unit::exec_later(caf::resumable* job) { parent_->post(lane_, job); }

}  // namespace

void use_lanes(caf::actor_system_config& cfg, io::lanes& lanes, unsigned max_throughput) {
  cfg.set("scheduler.max-throughput", static_cast<size_t>(max_throughput));
  cfg.set("scheduler.max-threads", lanes.size());
  cfg.module_factories.push_back(
      [l = &lanes](caf::actor_system& sys) -> caf::actor_system::module* {
        return new lane_coordinator(sys, l);
      });
}

}  // namespace parley::actors
