// parley_redis_bench: cost per command of parley::store::redis_client, the path
// every conversation turn's snapshot SET takes (issue 4).
//
// --threads submitter threads each keep --in-flight SETs of --value-bytes in
// flight: a completion callback (on the client's I/O thread) hands the slot back
// to its submitter, which sends the next SET, as the runtime's CAF threads do
// after a caf::anon_send. Runs --seconds after a short warm-up, then prints
// commands/s, CPU microseconds per command of this process and of redis-server
// (--redis-pid, read from /proc/<pid>/stat), context switches of this process per
// command and per second, and commands per round trip. The machine is shared, so
// the CPU per command is the figure to compare, not the rate; for syscalls per
// command, run it under `perf stat -e 'syscalls:sys_enter_*'` and divide by the
// "commands in the run" line. JSON last line. --rate switches to an open loop
// (a fixed arrival rate, as parleyd's turns; the I/O thread then idles between
// ticks, which the closed loop rarely lets it do). --lanes N runs the closed
// loop on N io::lanes instead: each lane keeps --in-flight SETs in flight with
// command_on, and each completion (on the lane) sends the next SET from the
// lane itself, as a conversation actor on a lane does; --threads is ignored.
//
// Run: . scripts/lib/servers.sh && parley_start_redis /tmp/rd-db/redis &&
//      build/h-redis/bench/redis/parley_redis_bench --redis-pid $PARLEY_REDIS_PID

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "src/io/lanes.hpp"
#include "src/store/redis.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

struct sample {
  double cpu_us = 0;        // user+system of this process
  double redis_cpu_us = 0;  // user+system of redis-server, 0 without --redis-pid
  long voluntary = 0;       // context switches of this process, all threads
  long nonvoluntary = 0;
  long io_switches = 0;  // of the client's I/O thread alone
  std::uint64_t commands = 0;
  std::uint64_t round_trips = 0;
  clock_type::time_point at;
};

double self_cpu_us() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& tv) { return tv.tv_sec * 1e6 + tv.tv_usec; };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

/// utime+stime of a process from /proc/<pid>/stat; 0 when it cannot be read.
double proc_cpu_us(int pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  // The command name may hold spaces; fields count from the last ')'.
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// Context switches of every thread of this process (getrusage sums the threads;
/// /proc/self/status would count only the main thread).
void context_switches(long& voluntary, long& nonvoluntary) {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  voluntary = ru.ru_nvcsw;
  nonvoluntary = ru.ru_nivcsw;
}

/// Voluntary + nonvoluntary context switches of one thread of this process.
long thread_switches(long tid) {
  if (tid <= 0) return 0;
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/status");
  std::string line;
  long total = 0;
  while (std::getline(in, line)) {
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
        line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
      total += std::stol(line.substr(line.find(':') + 1));
  }
  return total;
}

// The client's I/O thread, learned in a callback (it runs there).
std::atomic<long> io_tid{0};

sample take(const parley::store::redis_client& client, int redis_pid) {
  sample s;
  s.at = clock_type::now();
  s.cpu_us = self_cpu_us();
  s.redis_cpu_us = proc_cpu_us(redis_pid);
  context_switches(s.voluntary, s.nonvoluntary);
  s.io_switches = thread_switches(io_tid.load());
  auto st = client.stats();
  s.commands = st.commands;
  s.round_trips = st.round_trips;
  return s;
}

/// One submitter: a thread that re-sends a SET whenever a callback returns a slot,
/// like a CAF worker reacting to the anon_send of a completion.
struct submitter {
  std::mutex mtx;
  std::condition_variable cv;
  int free_slots = 0;
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> completed{0};  // open loop (--rate) only
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Cost per command of parley's Redis client (SET of a snapshot-sized value)"};
  std::string url = std::getenv("REDIS_URL") != nullptr ? std::getenv("REDIS_URL") : "";
  int threads = 4;
  int in_flight = 16;
  std::size_t value_bytes = 400;
  double seconds = 3;
  int redis_pid = 0;
  int keys = 10000;
  app.add_option("--url", url, "Redis URL (default $REDIS_URL)");
  app.add_option("--threads", threads, "submitter threads")->check(CLI::PositiveNumber);
  app.add_option("--in-flight", in_flight, "SETs in flight per submitter")
      ->check(CLI::PositiveNumber);
  app.add_option("--value-bytes", value_bytes, "bytes per SET value");
  app.add_option("--seconds", seconds, "measured duration")->check(CLI::PositiveNumber);
  app.add_option("--redis-pid", redis_pid, "redis-server PID, for its CPU per command");
  app.add_option("--keys", keys, "distinct keys per submitter")->check(CLI::PositiveNumber);
  double open_rate = 0;
  app.add_option("--rate", open_rate,
                 "open loop: SETs per second over all threads, sent every 1 ms "
                 "(--in-flight ignored), like turns arriving over HTTP");
  int lane_count = 0;
  app.add_option("--lanes", lane_count,
                 "closed loop on this many io::lanes with command_on (--threads ignored)");
  bool vector_args = false;
  app.add_flag("--vector-args", vector_args,
               "build a std::vector<std::string> per command (the command() overload that copies)");
  CLI11_PARSE(app, argc, argv);
  if (url.empty()) {
    std::fprintf(stderr, "no Redis: pass --url or set REDIS_URL (see the header of this file)\n");
    return 2;
  }
  // Declared before the client: the lanes must outlive it and run until it is gone.
  std::unique_ptr<parley::io::lanes> lanes;
  parley::store::redis_options options{url};
  if (lane_count > 0) {
    lanes = std::make_unique<parley::io::lanes>(static_cast<std::size_t>(lane_count), "bench-lane");
    lanes->start();
    options.lanes = lanes.get();
    threads = lane_count;
  }
  auto created = parley::store::redis_client::create(options);
  if (!created) {
    std::fprintf(stderr, "%s\n", created.err().message.c_str());
    return 2;
  }
  auto& client = **created;
  client.command({"PING"}, [](auto) { io_tid.store(static_cast<long>(::gettid())); });
  if (auto r = client.command_sync({"PING"}); !r) {
    std::fprintf(stderr, "Redis not usable: %s\n", r.err().message.c_str());
    return 2;
  }

  const std::string value(value_bytes, 'v');
  std::atomic<bool> stop{false};
  std::vector<submitter> subs(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  // Lanes mode: SETs in flight over all lanes; a completion that finds `stop`
  // sends nothing more, so the client is destroyed only once this reaches 0.
  std::atomic<long> lane_outstanding{0};
  std::function<void(std::size_t, std::uint64_t)> lane_send;
  lane_send = [&](std::size_t lane, std::uint64_t n) {
    auto key = "bench:redis:" + std::to_string(lane) + ":" +
               std::to_string(n % static_cast<std::uint64_t>(keys));
    client.command_on(lane, {"SET", key, value},
                      [&, lane, n](parley::result<parley::store::redis_reply> r) {
                        if (!r) subs[lane].failures.fetch_add(1);
                        if (stop.load(std::memory_order_relaxed)) {
                          lane_outstanding.fetch_sub(1);
                          return;
                        }
                        lane_send(lane, n + static_cast<std::uint64_t>(in_flight));
                      });
  };
  for (int t = 0; lane_count > 0 && t < lane_count; ++t) {
    auto lane = static_cast<std::size_t>(t);
    lane_outstanding.fetch_add(in_flight);
    boost::asio::post(lanes->at(lane), [&, lane] {
      for (int i = 0; i < in_flight; ++i) lane_send(lane, static_cast<std::uint64_t>(i));
    });
  }
  for (int t = 0; lane_count == 0 && t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto& me = subs[static_cast<std::size_t>(t)];
      std::string prefix = "bench:redis:" + std::to_string(t) + ":";
      std::uint64_t n = 0;
      if (open_rate > 0) {
        // Open loop: rate/threads SETs per second, sent in 1 ms ticks, whatever
        // the completions do (turns arrive from HTTP, not from replies).
        double per_tick = open_rate / threads / 1000.0;
        double due = 0;
        std::uint64_t sent = 0;
        auto next = clock_type::now();
        while (!stop.load()) {
          for (due += per_tick; due >= 1; due -= 1, ++sent) {
            auto key = prefix + std::to_string(n++ % static_cast<std::uint64_t>(keys));
            client.command({"SET", key, value},
                           [&me](parley::result<parley::store::redis_reply> r) {
                             if (!r) me.failures.fetch_add(1);
                             me.completed.fetch_add(1, std::memory_order_release);
                           });
          }
          next += std::chrono::milliseconds(1);
          std::this_thread::sleep_until(next);
        }
        while (me.completed.load(std::memory_order_acquire) != sent)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return;
      }
      int outstanding = 0;
      int ready = in_flight;
      for (;;) {
        for (; ready > 0; --ready) {
          auto done = [&me](parley::result<parley::store::redis_reply> r) {
            if (!r) me.failures.fetch_add(1);
            {
              std::lock_guard<std::mutex> lock(me.mtx);
              ++me.free_slots;
            }
            me.cv.notify_one();
          };
          auto key = prefix + std::to_string(n++ % static_cast<std::uint64_t>(keys));
          // A braced list, as conversation_actor's snapshot SET is written.
          if (vector_args) {
            client.command(std::vector<std::string>{"SET", key, value}, done);
          } else {
            client.command({"SET", key, value}, done);
          }
          ++outstanding;
        }
        std::unique_lock<std::mutex> lock(me.mtx);
        me.cv.wait(lock, [&] { return me.free_slots > 0; });
        ready = me.free_slots;
        me.free_slots = 0;
        outstanding -= ready;
        if (stop.load()) {
          // Drain: wait for every SET still in flight so the client outlives none.
          while (outstanding > 0) {
            me.cv.wait(lock, [&] { return me.free_slots > 0; });
            outstanding -= me.free_slots;
            me.free_slots = 0;
          }
          return;
        }
      }
    });
  }

  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // warm-up
  auto a = take(client, redis_pid);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  auto b = take(client, redis_pid);
  stop.store(true);
  for (auto& w : workers) w.join();
  while (lane_outstanding.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  // Whole-run total (warm-up and drain included), to divide `perf stat` counts by.
  auto total = client.stats().commands;
  std::uint64_t failures = 0;
  for (auto& s : subs) failures += s.failures.load();
  double wall = std::chrono::duration<double>(b.at - a.at).count();
  double cmds = static_cast<double>(b.commands - a.commands);
  double trips = static_cast<double>(b.round_trips - a.round_trips);
  double rate = cmds / wall;
  double cpu = (b.cpu_us - a.cpu_us) / cmds;
  double redis_cpu = (b.redis_cpu_us - a.redis_cpu_us) / cmds;
  double vol = static_cast<double>(b.voluntary - a.voluntary);
  double invol = static_cast<double>(b.nonvoluntary - a.nonvoluntary);
  double io_sw = static_cast<double>(b.io_switches - a.io_switches);
  if (lane_count > 0) {
    std::printf("lanes %d x in-flight %d (command_on), SET of %zu bytes, %.2f s\n", lane_count,
                in_flight, value_bytes, wall);
  } else if (open_rate > 0) {
    std::printf("threads %d, open loop at %.0f/s, SET of %zu bytes, %.2f s\n", threads, open_rate,
                value_bytes, wall);
  } else {
    std::printf("threads %d x in-flight %d, SET of %zu bytes, %.2f s\n", threads, in_flight,
                value_bytes, wall);
  }
  std::printf("commands/s           %.0f\n", rate);
  std::printf("client CPU us/cmd    %.2f\n", cpu);
  std::printf("redis CPU us/cmd     %.2f%s\n", redis_cpu, redis_pid > 0 ? "" : " (no --redis-pid)");
  std::printf("ctx switches/s       %.0f voluntary, %.0f nonvoluntary\n", vol / wall, invol / wall);
  std::printf("ctx switches/cmd     %.3f\n", (vol + invol) / cmds);
  std::printf("I/O thread ctx sw/s  %.0f\n", io_sw / wall);
  std::printf("commands/round trip  %.2f\n", trips > 0 ? cmds / trips : 0.0);
  std::printf("failures             %llu\n", static_cast<unsigned long long>(failures));
  std::printf("commands in the run  %llu\n", static_cast<unsigned long long>(total));
  std::printf(
      "{\"commands_per_s\":%.0f,\"client_cpu_us_per_cmd\":%.3f,\"redis_cpu_us_per_cmd\":%.3f,"
      "\"csw_voluntary_per_s\":%.0f,\"csw_nonvoluntary_per_s\":%.0f,\"csw_per_cmd\":%.4f,"
      "\"io_thread_csw_per_s\":%.0f,\"cmds_per_round_trip\":%.2f,\"failures\":%llu}\n",
      rate, cpu, redis_cpu, vol / wall, invol / wall, (vol + invol) / cmds, io_sw / wall,
      trips > 0 ? cmds / trips : 0.0, static_cast<unsigned long long>(failures));
  return failures == 0 ? 0 : 1;
}
