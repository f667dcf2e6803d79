// CPU per conversation turn of the transcript path (issue 4): turns go through a
// transcript_writer with actors::catalog_sink, the code parleyd runs, into a real
// Postgres ($DATABASE_URL). Prints the CPU microseconds per turn of the Postgres
// backends serving the pool (from /proc/<pid>/stat) and of this process, without
// making the turns and pacing them. CPU, not wall time: the machine is shared. Turns
// go as parleyd sends them, one COPY line each (store::transcript_line_builder).
//
//   parley_transcript_bench --turns 200000 [--prefill 2000000] [--rate 40000]

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "actors/transcript/catalog_sink.hpp"
#include "actors/transcript/transcript_writer.hpp"
#include "src/store/catalog.hpp"
#include "src/store/migrations.hpp"
#include "src/store/postgres.hpp"

namespace {

using namespace parley;

/// utime + stime of a process, in microseconds.
double proc_cpu_us(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  // Fields after the command: state is field 3; utime and stime are 14 and 15.
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double self_cpu_us() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

std::vector<long> pids_of(store::postgres_client& admin, const std::string& app) {
  auto r = admin.query_sync([&](pqxx::transaction_base& tx) {
    std::vector<long> out;
    for (const auto& row :
         tx.exec_params("SELECT pid FROM pg_stat_activity WHERE application_name = $1", app))
      out.push_back(row[0].as<long>());
    return out;
  });
  if (!r) {
    std::cerr << "pg_stat_activity: " << r.err().message << "\n";
    std::exit(1);
  }
  return *r;
}

void must(const result<void>& r, const char* what) {
  if (!r) {
    std::cerr << what << ": " << r.err().message << "\n";
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CPU per turn of the transcript path against $DATABASE_URL"};
  std::size_t turns = 200000, prefill = 0, sessions = 20000, workers = 2;
  double rate = 0;
  bool keep = false;
  app.add_option("--turns", turns, "turns written and measured");
  app.add_option("--sessions", sessions, "conversations the turns go round");
  app.add_option("--prefill", prefill, "rows put in transcript_turns (by SQL) before measuring");
  app.add_flag("--keep", keep, "keep the table's rows instead of TRUNCATE first");
  app.add_option("--rate", rate, "turns per second (0: as fast as the writer takes them)");
  app.add_option("--workers", workers, "Postgres pool connections");
  CLI11_PARSE(app, argc, argv);
  const char* url = std::getenv("DATABASE_URL");
  if (url == nullptr) {
    std::cerr << "DATABASE_URL is not set (scripts/lib/servers.sh: parley_start_postgres)\n";
    return 1;
  }
  store::postgres_options aopts;
  aopts.url = url;
  aopts.workers = 1;
  aopts.application_name = "parley_transcript_admin";
  auto admin = store::postgres_client::create(aopts);
  if (!admin) return std::cerr << admin.err().message << "\n", 1;
  if (auto m = store::apply_migrations(**admin); !m) return std::cerr << m.err().message << "\n", 1;
  if (!keep)
    must((*admin)->run_sync(
             [](pqxx::transaction_base& tx) { tx.exec("TRUNCATE transcript_turns"); }),
         "truncate");
  if (prefill > 0) {
    // Older sessions than the measured ones ("p-" prefix), several turns each, as a
    // table that has been written for a while.
    must((*admin)->run_sync([prefill](pqxx::transaction_base& tx) {
      tx.exec_params(
          "INSERT INTO transcript_turns (tenant_id, session_id, sequence, inbound, outbound, "
          "created_at) "
          "SELECT 'bench', 'p-' || md5((g / 8)::text), g % 8, 'hello, I would like to check my "
          "order', "
          "'[\"Sure, what is the order number?\", \"You can also type menu.\"]', now() "
          "FROM generate_series(0, $1::bigint - 1) AS g ON CONFLICT DO NOTHING",
          static_cast<long long>(prefill));
    }),
         "prefill");
    must((*admin)->run_autocommit_sync(
             [](pqxx::transaction_base& tx) { tx.exec("VACUUM ANALYZE transcript_turns"); }),
         "vacuum");
  }
  auto before_rows = (*admin)->query_sync([](pqxx::transaction_base& tx) {
    return tx.exec("SELECT count(*) FROM transcript_turns")[0][0].as<long>();
  });

  store::postgres_options popts;
  popts.url = url;
  popts.workers = workers;
  popts.application_name = "parley_transcript_bench";
  auto pg = store::postgres_client::create(popts);
  if (!pg) return std::cerr << pg.err().message << "\n", 1;
  // Open every pool connection before measuring, so connection start-up is not counted.
  {
    std::vector<std::thread> warm;
    for (std::size_t i = 0; i < workers * 4; ++i)
      warm.emplace_back([&] {
        must((*pg)->run_sync([](pqxx::transaction_base& tx) { tx.exec("SELECT pg_sleep(0.05)"); }),
             "warm");
      });
    for (auto& t : warm) t.join();
  }
  auto backends = pids_of(**admin, "parley_transcript_bench");

  actors::transcript_writer::options wopts;
  wopts.max_buffered = 100000000;  // the bench paces itself; nothing is dropped
  actors::transcript_writer writer(actors::catalog_sink(**pg), wopts, nullptr);

  // Session ids as the Bot API makes them: UUID version 7, the creation time in
  // milliseconds then random bits (sessions created 1 ms apart here); each turn: one
  // inbound, two replies. Runs with --keep write new turns.
  std::mt19937_64 random{std::random_device{}()};
  std::vector<std::string> ids(sessions);
  auto now_ms =
      static_cast<unsigned long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  for (std::size_t i = 0; i < sessions; ++i) {
    auto ms = now_ms + i;
    auto hi = random(), lo = random();
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08llx-%04llx-7%03llx-%04llx-%012llx",
                  (ms >> 16) & 0xffffffffULL, ms & 0xffff,
                  static_cast<unsigned long long>(hi & 0xfff),
                  static_cast<unsigned long long>(0x8000 | ((lo >> 48) & 0x3fff)),
                  static_cast<unsigned long long>(lo & 0xffffffffffffULL));
    ids[i] = buf;
  }
  double pg0 = 0;
  for (auto pid : backends) pg0 += proc_cpu_us(pid);
  double self0 = self_cpu_us(), prod = 0;
  auto start = std::chrono::steady_clock::now();
  // Turns go in chunks, so that reading this thread's CPU clock (a system call) is
  // rare; paced runs use small chunks, close to turns arriving one by one.
  const std::size_t chunk = rate > 0 ? 8 : 256;
  // parleyd's path: each turn one COPY line, formatted by the conversation
  // (store::transcript_line_builder).
  std::vector<store::transcript_line> made_lines;
  for (std::size_t first = 0; first < turns; first += chunk) {
    double t0 = thread_cpu_us();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    made_lines.clear();
    for (std::size_t n = first; n < std::min(turns, first + chunk); ++n) {
      const auto& s = ids[n % sessions];
      uint64_t seq = n / sessions + 1;
      const std::string in = "I would like to check order " + std::to_string(n);
      const char* out0 = "Sure, let me look up your order.";
      const char* out1 = "Anything else? Type menu to see the options.";
      store::transcript_line_builder line("bench", s, static_cast<std::int64_t>(seq));
      line.inbound(in);
      line.reply(out0);
      line.reply(out1);
      made_lines.push_back(line.finish(ms));
    }
    // Making the turns' lines is the conversation's work, not counted;
    // append is.
    double t1 = thread_cpu_us();
    prod += t1 - t0;
    for (auto& l : made_lines) writer.append(std::move(l));
    double t2 = thread_cpu_us();
    if (rate > 0) {
      auto due = start + std::chrono::microseconds(static_cast<long long>(
                             1e6 * static_cast<double>(first + chunk) / rate));
      if (std::chrono::steady_clock::now() < due) std::this_thread::sleep_until(due);
    } else {
      while (writer.lag() > 20000) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    prod += thread_cpu_us() - t2;
  }
  if (!writer.flush(std::chrono::minutes(10))) return std::cerr << "flush timed out\n", 1;
  auto wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double self1 = self_cpu_us();
  double pg1 = 0;
  for (auto pid : backends) pg1 += proc_cpu_us(pid);
  writer.stop();
  auto after_rows = (*admin)->query_sync([](pqxx::transaction_base& tx) {
    return tx.exec("SELECT count(*) FROM transcript_turns")[0][0].as<long>();
  });
  long written = (after_rows && before_rows) ? *after_rows - *before_rows : -1;
  double t = static_cast<double>(turns);
  std::printf(
      "turns %zu (rows stored %ld, table before %ld)  backends %zu  wall %.2f s\n"
      "postgres backends  %.2f us CPU/turn\n"
      "client (append, writer, pg pool) %.2f us CPU/turn  (making the turns and pacing: %.2f "
      "us/turn, not included)\n",
      turns, written, before_rows ? *before_rows : -1L, backends.size(), wall, (pg1 - pg0) / t,
      (self1 - self0 - prod) / t, prod / t);
  return written == static_cast<long>(turns) ? 0 : 2;
}
