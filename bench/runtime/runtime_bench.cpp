// parley_runtime_bench: memory per idle live conversation and activation rate from
// Redis snapshots, measured in-process on the real runtime (issue 4 figures).
//
// Builds one node's conversation runtime without HTTP and without Postgres: a CAF
// actor system, actors::runtime, a bot_registry whose program_source serves the
// compiled bench bot from memory, and a real Redis from REDIS_URL (bench/runtime.sh
// starts a private one). Then:
//
//  (a) memory: starts --conversations sessions (inbound kind start, which runs the
//      welcome dialog and commits a snapshot each), waits for every outcome, and
//      reports the growth of RSS (/proc/self/statm) and of the heap in use (jemalloc
//      stats.allocated, or glibc mallinfo2) per live conversation, next to the average serialized
//      snapshot size read back from Redis (STRLEN).
//  (b) activation: stops that runtime (actors gone, snapshots stay in Redis),
//      builds a new one, and sends one text turn to each conversation with at most
//      --in-flight outstanding. Every turn activates its conversation from its
//      snapshot (GET, parse) and then runs and commits the turn (VM, SET), so the
//      rate includes one turn each.
//
// Prints a summary and a JSON last line. Every wait is bounded (--timeout).

#include <dlfcn.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <prometheus/registry.h>
#include <CLI/CLI.hpp>
#include <caf/all.hpp>

#include "actors/action/action_runner.hpp"
#include "actors/registry/bot_registry.hpp"
#include "actors/runtime/lane_scheduler.hpp"
#include "actors/runtime/runtime.hpp"
#include "src/bot/bot.hpp"
#include "src/http/outbound.hpp"
#include "src/io/lanes.hpp"
#include "src/log/log.hpp"
#include "src/store/redis.hpp"

namespace {

using namespace parley;
using clock_type = std::chrono::steady_clock;

struct memory {
  double rss_bytes = 0;
  double heap_bytes = 0;
};

memory measure_memory() {
  memory m;
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  m.rss_bytes = static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
  // jemalloc (linked like parleyd's) keeps its own books: stats.allocated after an
  // epoch refresh. Looked up at run time so the bench also runs on glibc malloc.
  using mallctl_fn = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
  static auto mallctl = reinterpret_cast<mallctl_fn>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (mallctl != nullptr) {
    uint64_t epoch = 1;
    std::size_t len = sizeof epoch;
    mallctl("epoch", &epoch, &len, &epoch, len);
    std::size_t allocated = 0;
    len = sizeof allocated;
    if (mallctl("stats.allocated", &allocated, &len, nullptr, 0) == 0) {
      m.heap_bytes = static_cast<double>(allocated);
      return m;
    }
  }
  struct mallinfo2 mi = mallinfo2();
  m.heap_bytes = static_cast<double>(mi.uordblks) + static_cast<double>(mi.hblkhd);
  return m;
}

/// Gives free pages back to the kernel, so RSS shows what is in use: malloc_trim for
/// glibc, and for jemalloc a purge of every arena's dirty pages (MALLCTL_ARENAS_ALL).
void release_free_memory() {
  malloc_trim(0);
  using mallctl_fn = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
  static auto mallctl = reinterpret_cast<mallctl_fn>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (mallctl != nullptr) mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
}

/// CPU seconds (user + system) this process used so far, all threads.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/// Submits inbound messages with at most `limit` outstanding and waits for all.
class driver {
 public:
  driver(actors::runtime& rt, std::size_t limit) : rt_(rt), limit_(limit) {}

  /// False when the deadline passed before every outcome arrived. Refills to
  /// `limit` outstanding, then sleeps until half of them are answered, so the
  /// submitting thread wakes once per limit/2 outcomes, not once per outcome.
  bool run(std::size_t n, const std::function<actors::inbound(std::size_t)>& make,
           clock_type::time_point deadline) {
    low_ = limit_ / 2;
    for (std::size_t i = 0; i < n; ++i) {
      {
        std::unique_lock<std::mutex> lock(m_);
        if (outstanding_ >= limit_ &&
            !cv_.wait_until(lock, deadline, [&] { return outstanding_ <= low_; }))
          return false;
        ++outstanding_;
      }
      rt_.submit(make(i), [this](actors::turn_outcome out) {
        std::lock_guard<std::mutex> lock(m_);
        ++by_status_[static_cast<int>(out.st)];
        if (out.st != actors::turn_outcome::status::ok && first_error_.empty())
          first_error_ = out.message;
        --outstanding_;
        if (outstanding_ == low_ || outstanding_ == 0) cv_.notify_all();
      });
    }
    std::unique_lock<std::mutex> lock(m_);
    low_ = 0;
    return cv_.wait_until(lock, deadline, [&] { return outstanding_ == 0; });
  }

  std::size_t ok() {
    std::lock_guard<std::mutex> lock(m_);
    return by_status_[static_cast<int>(actors::turn_outcome::status::ok)];
  }
  std::string failures() {
    std::lock_guard<std::mutex> lock(m_);
    std::string out;
    for (auto& [st, n] : by_status_)
      if (st != static_cast<int>(actors::turn_outcome::status::ok))
        out += " status" + std::to_string(st) + "=" + std::to_string(n);
    if (!first_error_.empty()) out += " (first: " + first_error_ + ")";
    return out;
  }
  void reset() {
    std::lock_guard<std::mutex> lock(m_);
    by_status_.clear();
    first_error_.clear();
  }

 private:
  actors::runtime& rt_;
  std::size_t limit_;
  std::mutex m_;
  std::condition_variable cv_;
  std::size_t outstanding_ = 0;
  std::size_t low_ = 0;
  std::map<int, std::size_t> by_status_;
  std::string first_error_;
};

/// CPU seconds the Redis server used so far (INFO cpu), or 0 when unknown.
double redis_cpu_seconds(store::redis_client& redis) {
  auto r = redis.command_sync({"INFO", "cpu"});
  if (!r) return 0;
  double total = 0;
  for (const char* field : {"used_cpu_sys:", "used_cpu_user:"}) {
    auto at = r->str.find(field);
    if (at != std::string::npos) total += std::atof(r->str.c_str() + at + std::strlen(field));
  }
  return total;
}

std::string session_of(std::size_t i) { return "bench-" + std::to_string(i); }

}  // namespace

int main(int argc, char** argv) {
  std::size_t conversations = 100000;
  std::size_t in_flight = 5000;
  std::string bot_file = PARLEY_BENCH_BOT;
  std::string tenant = "bench";
  std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::size_t stripes = 32;
  double timeout_s = 300;
  bool memory_only = false;
  bool markers = false;
  std::string policy = "lanes";
  bool redis_lanes = true;
  long aggressive_poll = -1, moderate_poll = -1, moderate_sleep_us = -1;
  CLI::App app{
      "parley_runtime_bench: memory per live conversation and activation rate (in-process "
      "runtime)"};
  app.add_option("--conversations", conversations, "live conversations to start")
      ->capture_default_str();
  app.add_option("--in-flight", in_flight, "most outstanding turns at once")->capture_default_str();
  app.add_option("--bot", bot_file, "bot definition file (no actions)")->capture_default_str();
  app.add_option("--threads", threads, "CAF scheduler threads")->capture_default_str();
  app.add_option("--stripes", stripes, "runtime stripes (lock groups)")->capture_default_str();
  app.add_option("--timeout", timeout_s, "seconds each phase may take at most")
      ->capture_default_str();
  app.add_flag("--redis-lanes,!--no-redis-lanes", redis_lanes,
               "one Redis connection per lane (parleyd's redis.lane_connections; default on)");
  app.add_option("--scheduler-policy", policy,
                 "CAF scheduler: lanes (default, as parleyd), stealing or sharing")
      ->capture_default_str();
  app.add_option("--aggressive-poll", aggressive_poll,
                 "CAF work-stealing.aggressive-poll-attempts (-1: default)");
  app.add_option("--moderate-poll", moderate_poll,
                 "CAF work-stealing.moderate-poll-attempts (-1: default)");
  app.add_option("--moderate-sleep-us", moderate_sleep_us,
                 "CAF work-stealing.moderate-sleep-duration (-1: default)");
  app.add_flag("--markers", markers,
               "print 'activation phase starts/ends' on stderr (to attach a profiler)");
  app.add_flag("--memory-only", memory_only, "stop after the memory figure (for heap profilers)");
  CLI11_PARSE(app, argc, argv);
  const char* redis_url = std::getenv("REDIS_URL");
  if (redis_url == nullptr) {
    std::fprintf(stderr,
                 "parley_runtime_bench: set REDIS_URL (bench/runtime.sh starts a private Redis)\n");
    return 2;
  }
  log::configure(log::level::warn, log::format::json);

  auto compiled = bot::compile_file(bot_file);
  if (!compiled.ok()) {
    for (const auto& d : compiled.diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
    return 2;
  }
  const std::string bot_name =
      compiled.program->name().empty() ? "bench" : compiled.program->name();
  const std::string program_bytes = bot::serialize(*compiled.program);

  // Outlive the Redis client and both actor systems below (see io::lanes).
  io::lanes lanes(threads);
  if (policy == "lanes") lanes.start();

  store::redis_options ropts;
  ropts.url = redis_url;
  ropts.command_timeout = std::chrono::milliseconds(10000);
  if (redis_lanes) ropts.lanes = &lanes;
  auto redis = store::redis_client::create(ropts);
  if (!redis) {
    std::fprintf(stderr, "parley_runtime_bench: %s\n", redis.err().message.c_str());
    return 2;
  }
  if (auto f = (*redis)->command_sync({"FLUSHDB"}); !f) {
    std::fprintf(stderr, "parley_runtime_bench: redis: %s\n", f.err().message.c_str());
    return 2;
  }

  caf::actor_system_config cfg;
  cfg.set("logger.verbosity", caf::atom("quiet"));
  if (policy == "lanes") {
    actors::use_lanes(cfg, lanes);
  } else {
    cfg.set("scheduler.max-threads", threads);
    cfg.set("scheduler.policy", policy == "sharing" ? caf::atom("sharing") : caf::atom("stealing"));
  }
  if (aggressive_poll >= 0)
    cfg.set("work-stealing.aggressive-poll-attempts", static_cast<std::size_t>(aggressive_poll));
  if (moderate_poll >= 0)
    cfg.set("work-stealing.moderate-poll-attempts", static_cast<std::size_t>(moderate_poll));
  if (moderate_sleep_us >= 0)
    cfg.set("work-stealing.moderate-sleep-duration",
            caf::timespan{std::chrono::microseconds(moderate_sleep_us)});
  // One actor system per phase: destroying it joins the scheduler, so the first
  // runtime's 100,000 actors are really gone (await_all_actors_done returns before
  // the stripes' states, which hold the last references, are destroyed).
  auto sys = std::make_unique<caf::actor_system>(cfg);

  actors::program_source source;
  source.load = [&](const std::string& t, const std::string& b, uint32_t version, auto done) {
    if (t != tenant || b != bot_name || version > 1)
      return done(make_error("not_found", "no such bot " + b));
    done(std::make_pair(uint32_t{1}, program_bytes));
  };
  source.changes = [&](int64_t since, auto done) {
    std::vector<store::active_change> out;
    if (since < 1) out.push_back({tenant, bot_name, 1, 1});
    done(std::move(out));
  };
  actors::bot_registry registry(std::move(source));
  registry.start();
  for (int i = 0; i < 200 && registry.applied_change_seq() < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto outbound = http::outbound_client::make(http::outbound_options{}, nullptr);
  if (!outbound) {
    std::fprintf(stderr, "parley_runtime_bench: %s\n", outbound.err().message.c_str());
    return 2;
  }
  actors::action_runner actions(**outbound, nullptr);

  auto make_runtime = [&](prometheus::Registry& metrics) {
    actors::runtime::deps d;
    d.system = sys.get();
    d.redis = redis->get();
    d.redis_lanes = redis_lanes ? lanes.size() : 0;
    d.registry = &registry;
    d.transcripts = nullptr;
    d.actions = &actions;
    d.metrics = &metrics;
    actors::runtime_options o;
    o.stripes = stripes;
    return std::make_unique<actors::runtime>(d, o);
  };
  auto now_unix = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  auto start_in = [&](std::size_t i) {
    actors::inbound in;
    in.what = actors::inbound::kind::start;
    in.tenant = tenant;
    in.bot = bot_name;
    in.channel = "botapi";
    in.session_id = session_of(i);
    in.external_key = "ext-" + std::to_string(i);
    in.message_id = "start";
    in.now_unix = now_unix();
    return in;
  };
  auto text_in = [&](std::size_t i) {
    actors::inbound in;
    in.what = actors::inbound::kind::text;
    in.tenant = tenant;
    in.channel = "botapi";
    in.session_id = session_of(i);
    in.sequence_id = 1;
    in.message_id = "1";
    in.text = "when are you open";
    in.now_unix = now_unix();
    return in;
  };
  auto phase_deadline = [&] {
    return clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                   std::chrono::duration<double>(timeout_s));
  };

  // ---- (a) memory per idle live conversation
  auto metrics_a = std::make_shared<prometheus::Registry>();
  auto rt = make_runtime(*metrics_a);
  {
    // Warm up: the program is loaded and every stripe has run once, so the baseline
    // holds everything that does not grow with the number of conversations.
    driver warm(*rt, in_flight);
    if (!warm.run(
            stripes * 4, [&](std::size_t i) { return start_in(conversations + i); },
            phase_deadline()) ||
        warm.ok() != stripes * 4) {
      std::fprintf(stderr, "parley_runtime_bench: warm-up failed:%s\n", warm.failures().c_str());
      return 1;
    }
  }
  release_free_memory();
  auto before = measure_memory();
  driver starts(*rt, in_flight);
  auto t_start = clock_type::now();
  double cpu_start = cpu_seconds(), redis_cpu_start = redis_cpu_seconds(**redis);
  bool finished = starts.run(conversations, start_in, phase_deadline());
  double start_s = std::chrono::duration<double>(clock_type::now() - t_start).count();
  cpu_start = cpu_seconds() - cpu_start;
  redis_cpu_start = redis_cpu_seconds(**redis) - redis_cpu_start;
  if (!finished || starts.ok() != conversations) {
    std::fprintf(stderr, "parley_runtime_bench: starts: %zu of %zu ok%s%s\n", starts.ok(),
                 conversations, starts.failures().c_str(), finished ? "" : " (timed out)");
    return 1;
  }
  // Mailboxes and Redis buffers settle, and a supervisor tick (every second) drops the
  // finished jobs each stripe keeps until then for supervision: then they are idle.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto after_raw = measure_memory();
  release_free_memory();
  auto after = measure_memory();
  double n = static_cast<double>(conversations);
  double rss_per = (after.rss_bytes - before.rss_bytes) / n;
  double rss_raw_per = (after_raw.rss_bytes - before.rss_bytes) / n;
  double heap_per = (after.heap_bytes - before.heap_bytes) / n;

  // Average snapshot size: STRLEN of a sample of the keys, pipelined.
  std::size_t sample = std::min<std::size_t>(conversations, 2000);
  double snapshot_bytes = 0;
  {
    std::size_t got = 0;
    for (std::size_t i = 0; i < sample; ++i) {
      auto r = (*redis)->command_sync(
          {"STRLEN", "parley:conv:" + tenant + ":" + session_of(i * (conversations / sample))});
      if (r && r->type == store::redis_reply::kind::integer) {
        snapshot_bytes += static_cast<double>(r->integer);
        ++got;
      }
    }
    if (got > 0) snapshot_bytes /= static_cast<double>(got);
  }
  // Neither jemalloc's nor glibc's books available (another allocator): use RSS.
  double beyond = (heap_per > 0 ? heap_per : rss_per) - snapshot_bytes;
  std::printf(
      "memory      %zu live conversations started in %.2f s (%.0f starts/s; CPU per start: %.1f us "
      "here, "
      "%.1f us in Redis)\n",
      conversations, start_s, n / start_s, cpu_start / n * 1e6, redis_cpu_start / n * 1e6);
  std::printf(
      "            RSS +%.0f B/conversation (before releasing free pages +%.0f B), heap in use "
      "+%.0f B\n",
      rss_per, rss_raw_per, heap_per);
  std::printf(
      "            average snapshot (serialized state) %.0f B; heap beyond the state %.0f B (goal "
      "<= 1536 B)\n",
      snapshot_bytes, beyond);

  std::fflush(stdout);
  if (memory_only) {
    std::printf(
        "{\"conversations\":%zu,\"rss_per_conversation_b\":%.0f,\"heap_per_conversation_b\":%.0f,"
        "\"snapshot_b\":%.0f,\"beyond_state_b\":%.0f}\n",
        conversations, rss_per, heap_per, snapshot_bytes, beyond);
    rt->stop();
    rt.reset();
    sys.reset();
    registry.stop();
    return 0;
  }

  // ---- (b) activation from Redis snapshots
  rt->stop();
  rt.reset();
  sys.reset();
  sys = std::make_unique<caf::actor_system>(cfg);
  release_free_memory();
  auto metrics_b = std::make_shared<prometheus::Registry>();
  rt = make_runtime(*metrics_b);
  driver turns(*rt, in_flight);
  if (markers) std::fprintf(stderr, "activation phase starts\n");
  auto t_act = clock_type::now();
  double cpu_act = cpu_seconds(), redis_cpu_act = redis_cpu_seconds(**redis);
  finished = turns.run(conversations, text_in, phase_deadline());
  double act_s = std::chrono::duration<double>(clock_type::now() - t_act).count();
  cpu_act = cpu_seconds() - cpu_act;
  redis_cpu_act = redis_cpu_seconds(**redis) - redis_cpu_act;
  if (markers) std::fprintf(stderr, "activation phase ends\n");
  if (!finished || turns.ok() != conversations) {
    std::fprintf(stderr, "parley_runtime_bench: activation turns: %zu of %zu ok%s%s\n", turns.ok(),
                 conversations, turns.failures().c_str(), finished ? "" : " (timed out)");
    return 1;
  }
  double act_rate = n / act_s;
  std::printf(
      "activation  %zu conversations activated from Redis, one text turn each, in %.2f s: %.0f/s "
      "(goal >= 50000/s; in flight <= %zu, %zu scheduler threads, %zu stripes)\n",
      conversations, act_s, act_rate, in_flight, threads, stripes);
  std::printf(
      "            CPU per activation: %.1f us in this process (all threads), %.1f us in Redis\n",
      cpu_act / n * 1e6, redis_cpu_act / n * 1e6);
  std::printf(
      "{\"conversations\":%zu,\"rss_per_conversation_b\":%.0f,\"heap_per_conversation_b\":%.0f,"
      "\"snapshot_b\":%.0f,\"beyond_state_b\":%.0f,\"starts_per_s\":%.0f,\"activations_per_s\":%."
      "0f,"
      "\"cpu_us_per_activation\":%.1f,\"redis_cpu_us_per_activation\":%.1f,"
      "\"in_flight\":%zu,\"threads\":%zu,\"stripes\":%zu}\n",
      conversations, rss_per, heap_per, snapshot_bytes, beyond, n / start_s, act_rate,
      cpu_act / n * 1e6, redis_cpu_act / n * 1e6, in_flight, threads, stripes);
  rt->stop();
  rt.reset();
  sys.reset();
  registry.stop();
  return 0;
}
