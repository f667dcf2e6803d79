// The runtime's thread-safe services, through their own seams: the transcript writer
// (batching, retry, bounded buffer) and the bot registry (program cache, active
// versions from the change log). Postgres behind them is covered by the integration
// tests; here the write and load functions are plain callbacks, so every case is
// exact and needs no server.

#include <gtest/gtest.h>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <numeric>
#include <utility>

#include "actors/registry/bot_registry.hpp"
#include "actors/transcript/transcript_writer.hpp"
#include "tests/unit/actors/registry_support.hpp"

namespace parley::actors {
namespace {

using namespace std::chrono_literals;

store::transcript_line turn_line(uint64_t seq, std::size_t replies) {
  store::transcript_line_builder b("t", "s", static_cast<std::int64_t>(seq));
  b.inbound("hi");
  for (std::size_t i = 0; i < replies; ++i) b.reply("r");
  return b.finish(1);
}

/// A turn of one message (its inbound text).
store::transcript_line row(uint64_t seq) { return turn_line(seq, 0); }

/// The sequence of a line: its third column.
uint64_t sequence_of(const store::transcript_line& l) {
  auto from = l.copy.find('\t', l.copy.find('\t') + 1) + 1;
  return std::stoull(l.copy.substr(from, l.copy.find('\t', from) - from));
}

/// The sequences of a batch's turns, one per message (a turn of n messages n times).
std::vector<uint64_t> sequences(const transcript_batch& batch) {
  std::vector<uint64_t> out;
  for (const auto& l : *batch.lines) out.insert(out.end(), l.messages, sequence_of(l));
  return out;
}

double sample(prometheus::Registry& reg, const std::string& name) {
  auto text = prometheus::TextSerializer{}.Serialize(reg.Collect());
  auto pos = text.find("\n" + name + " ");
  return pos == std::string::npos ? -1 : std::stod(text.substr(pos + name.size() + 2));
}

/// A write function whose outcome the test decides, recording what it received.
struct sink {
  std::mutex m;
  std::vector<uint64_t> written;  // sequences of successful writes, in order
  int failures_left = 0;
  int calls = 0;
  transcript_writer::write_fn fn() {
    return [this](const transcript_batch& batch, std::function<void(result<void>)> done) {
      std::unique_lock<std::mutex> lock(m);
      ++calls;
      if (failures_left > 0) {
        --failures_left;
        lock.unlock();
        return done(make_error("postgres_unavailable", "down"));
      }
      for (auto seq : sequences(batch)) written.push_back(seq);
      lock.unlock();
      done(result<void>{});
    };
  }
};

TEST(TranscriptWriter, WritesEveryRowOnceInOrderAcrossBatches) {
  sink s;
  prometheus::Registry reg;
  transcript_writer w(s.fn(), {10, 5ms, 1000}, &reg);
  for (uint64_t i = 1; i <= 35; ++i) w.append(row(i));
  ASSERT_TRUE(w.flush(5s));
  std::vector<uint64_t> expected;
  for (uint64_t i = 1; i <= 35; ++i) expected.push_back(i);
  EXPECT_EQ(s.written, expected);
  EXPECT_GE(s.calls, 4) << "batches of at most 10 rows";
  EXPECT_EQ(sample(reg, "parley_transcript_rows_written_total"), 35);
  EXPECT_EQ(w.lag(), 0u);
}

TEST(TranscriptWriter, AFullBatchOrAFlushWakesTheWriterBeforeTheInterval) {
  // The thread is not woken per append, only by a full batch or a flush: with an
  // interval of an hour, both still write at once.
  struct counted {
    std::mutex m;
    std::condition_variable cv;
    std::size_t rows = 0;
  } c;
  prometheus::Registry reg;
  transcript_writer w(
      [&c](const transcript_batch& batch, std::function<void(result<void>)> done) {
        {
          std::lock_guard<std::mutex> lock(c.m);
          c.rows += batch.messages();
        }
        c.cv.notify_all();
        done(result<void>{});
      },
      {10, 1h, 1000}, &reg);
  for (uint64_t i = 1; i <= 10; ++i) w.append(row(i));
  {
    std::unique_lock<std::mutex> lock(c.m);
    ASSERT_TRUE(c.cv.wait_for(lock, 5s, [&] { return c.rows == 10; }))
        << "a full batch is written at once";
  }
  w.append(row(11));
  w.append(row(12));
  ASSERT_TRUE(w.flush(5s)) << "a flush does not wait for the interval";
  EXPECT_EQ(c.rows, 12u);
  EXPECT_TRUE(w.flush(5s)) << "nothing buffered: at once";
}

TEST(TranscriptWriter, ABatchNeverSplitsATurn) {
  // A turn is one database row: its messages travel in one batch even past max_batch.
  struct batches {
    std::mutex m;
    std::vector<std::vector<uint64_t>> got;
  } b;
  prometheus::Registry reg;
  transcript_writer w(
      [&b](const transcript_batch& batch, std::function<void(result<void>)> done) {
        {
          std::lock_guard<std::mutex> lock(b.m);
          b.got.push_back(sequences(batch));
        }
        done(result<void>{});
      },
      {4, 5ms, 1000}, &reg);
  // Turns of 3 messages each (one in, two out), appended whole as the runtime does.
  for (uint64_t t = 1; t <= 10; ++t) w.append(turn_line(t, 2));
  ASSERT_TRUE(w.flush(5s));
  std::size_t total = 0;
  for (const auto& batch : b.got) {
    ASSERT_FALSE(batch.empty());
    total += batch.size();
    EXPECT_EQ(batch.size() % 3, 0u) << "a batch ended inside a turn";
    EXPECT_LE(batch.size(), 6u) << "max_batch 4, extended only to the end of the turn it cut";
  }
  EXPECT_EQ(total, 30u);
}

TEST(TranscriptWriter, RetriesAFailedBatchAndKeepsOrder) {
  sink s;
  s.failures_left = 2;
  prometheus::Registry reg;
  transcript_writer w(s.fn(), {100, 5ms, 1000}, &reg);
  w.append(row(1));
  w.append(row(2));
  w.append(row(3));
  ASSERT_TRUE(w.flush(10s));
  EXPECT_EQ(s.written, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(sample(reg, "parley_transcript_write_failures_total"), 2);
}

TEST(TranscriptWriter, ABoundedBufferDropsAndCountsWhatDoesNotFit) {
  // The writer blocks in its first write until the test lets it go, so the buffer fills.
  std::mutex m;
  std::condition_variable cv;
  bool in_write = false, release = false;
  std::vector<uint64_t> written;
  prometheus::Registry reg;
  transcript_writer w(
      [&](const transcript_batch& batch, std::function<void(result<void>)> done) {
        std::unique_lock<std::mutex> lock(m);
        in_write = true;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
        for (auto seq : sequences(batch)) written.push_back(seq);
        lock.unlock();
        done(result<void>{});
      },
      {1, 1ms, 3}, &reg);
  w.append(row(1));
  {
    std::unique_lock<std::mutex> lock(m);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return in_write; }));
  }
  for (uint64_t i = 2; i <= 6; ++i) w.append(row(i));  // room for 3 while row 1 is in flight
  EXPECT_EQ(sample(reg, "parley_transcript_rows_dropped_total"), 2);
  EXPECT_EQ(w.lag(), 4u) << "3 buffered + 1 in flight";
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(w.flush(5s));
  EXPECT_EQ(written, (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST(TranscriptLine, FormatsATurnAsOneLineOfCopyText) {
  // Columns: tenant, session, sequence, inbound, inbound payload, replies (a JSON
  // array), time, replay record (a JSON object, NULL for none). COPY's text format escapes tab,
  // line ends and backslash; the JSON of the replies has its own escapes, whose backslashes COPY
  // doubles.
  store::transcript_line_builder b("t", "s-1", 7);
  b.inbound("a\tb\\N");
  b.reply("x\"y\n");
  b.reply("");
  auto l = b.finish(1700000000123, R"({"op":"text","input":"a\tb"})");
  EXPECT_EQ(l.copy,
            "t\ts-1\t7\ta\\tb\\\\N\t\\N\t[\"x\\\\\"y\\\\n\",\"\"]\t2023-11-14 22:13:20.123+00"
            "\t{\"op\":\"text\",\"input\":\"a\\\\tb\"}");
  EXPECT_EQ(l.messages, 3u);

  store::transcript_line_builder welcome("t", "s-2", 1);
  welcome.reply("hi");
  auto w = welcome.finish(1700000000005);
  EXPECT_EQ(w.copy, "t\ts-2\t1\t\\N\t\\N\t[\"hi\"]\t2023-11-14 22:13:20.005+00\t\\N")
      << "no inbound message: NULL";
  EXPECT_EQ(w.messages, 1u);

  store::transcript_line_builder odd("t", "s-3", 2);
  odd.inbound(std::string("a\0b\xff", 4));
  auto o = odd.finish(1700000001000);
  EXPECT_EQ(o.copy, "t\ts-3\t2\tab\xEF\xBF\xBD\t\\N\t[]\t2023-11-14 22:13:21.000+00\t\\N")
      << "NUL dropped, invalid UTF-8 replaced, no replies: an empty array";
  EXPECT_EQ(o.messages, 1u);
}

/// A write that fails its first batch and succeeds after; each batch goes to `seen`
/// with whether it is the failing one, one at a time.
transcript_writer::write_fn failing_first(
    std::function<void(const transcript_batch&, bool failed)> seen) {
  auto m = std::make_shared<std::mutex>();
  auto failed_already = std::make_shared<bool>(false);
  return [=](const transcript_batch& batch, std::function<void(result<void>)> done) {
    std::unique_lock<std::mutex> lock(*m);
    const bool fail = !std::exchange(*failed_already, true);
    seen(batch, fail);
    lock.unlock();
    if (fail) return done(make_error("postgres_unavailable", "down"));
    done(result<void>{});
  };
}

TEST(TranscriptWriter, WholeTurnsBatchByTheirMessagesAndSurviveAFailedWrite) {
  // Lines (the runtime's whole turns) count their messages against max_batch and
  // max_buffered, are never split, and go back to the front when a write fails.
  std::vector<std::vector<std::size_t>> batches;  // messages of each line, per successful write
  prometheus::Registry reg;
  transcript_writer w(
      failing_first([&](const transcript_batch& batch, bool failed) {
        if (failed) return;
        batches.emplace_back();
        for (const auto& l : *batch.lines) batches.back().push_back(l.messages);
        EXPECT_EQ(batch.messages(),
                  std::accumulate(batches.back().begin(), batches.back().end(), std::size_t{0}));
      }),
      {5, 5ms, 12}, &reg);
  for (uint64_t t = 1; t <= 4; ++t)
    w.append(turn_line(t, 2));  // 3 messages each: 12 buffered at most
  w.append(turn_line(5, 0));    // does not fit while nothing was written
  ASSERT_TRUE(w.flush(10s));
  std::size_t total = 0;
  for (const auto& b : batches) {
    std::size_t n = 0;
    for (auto k : b) n += k;
    EXPECT_LE(n, 6u) << "max_batch 5 messages, passed only by the rest of one turn";
    total += n;
  }
  EXPECT_EQ(total + static_cast<std::size_t>(sample(reg, "parley_transcript_rows_dropped_total")),
            13u);
  EXPECT_EQ(sample(reg, "parley_transcript_rows_written_total"), static_cast<double>(total));
  EXPECT_EQ(sample(reg, "parley_transcript_write_failures_total"), 1);
  EXPECT_EQ(w.lag(), 0u);
}

TEST(TranscriptWriter, LinesSentAgainAfterAFailedWriteAreMarkedMaybeStored) {
  // A failed write's outcome is unknown (Postgres may have committed it): the lines
  // it held go again marked, so the catalog merges them instead of a plain COPY that
  // a stored turn would fail. Lines never sent before are not marked.
  std::vector<std::pair<std::size_t, bool>>
      seen;  // (line's messages, maybe_stored), successful writes
  prometheus::Registry reg;
  transcript_writer w(failing_first([&](const transcript_batch& batch, bool failed) {
                        for (const auto& l : *batch.lines) {
                          if (failed)
                            EXPECT_FALSE(l.maybe_stored) << "a first attempt";
                          else
                            seen.emplace_back(l.messages, l.maybe_stored);
                        }
                      }),
                      {100, 1h, 1000}, &reg);
  // An interval of an hour: only flush() starts a write, so lines 1 and 2 share it.
  w.append(turn_line(1, 1));
  w.append(turn_line(2, 2));
  ASSERT_TRUE(w.flush(10s));
  w.append(turn_line(3, 3));
  ASSERT_TRUE(w.flush(10s));  // the writes happened before it returned
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], std::make_pair(std::size_t{2}, true));
  EXPECT_EQ(seen[1], std::make_pair(std::size_t{3}, true));
  EXPECT_EQ(seen[2], std::make_pair(std::size_t{4}, false));
}

using testing::change_log;
using testing::compiled;

TEST(BotRegistry, LoadsAVersionOnceAndFollowsTheChangeLog) {
  std::mutex m;
  int loads = 0;
  std::vector<store::active_change> log{{"t", "b", 1, 1}};
  program_source src;
  src.load = [&](const std::string&, const std::string&, uint32_t v,
                 std::function<void(result<std::pair<uint32_t, std::string>>)> done) {
    {
      std::lock_guard<std::mutex> lock(m);
      ++loads;
    }
    if (v == 0) v = 1;
    if (v > 2) return done(make_error("not_found", "no such version"));
    done(std::make_pair(v, compiled("v" + std::to_string(v))));
  };
  src.changes = change_log(m, log);
  bot_registry reg(src, 1ms);
  auto get = [&](std::function<void(bot_registry::callback)> call) {
    result<loaded_program> out = make_error("none", "no answer");
    call([&](result<loaded_program> r) { out = std::move(r); });  // this source answers inline
    return out;
  };
  auto a = get([&](auto cb) { reg.active("t", "b", cb); });
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->version, 1u);
  auto b = get([&](auto cb) { reg.version("t", "b", 1, cb); });
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->program.get(), a->program.get()) << "one shared program per version";
  EXPECT_EQ(loads, 1);

  reg.start();
  {
    std::lock_guard<std::mutex> lock(m);
    log.push_back({"t", "b", 2, 2});
  }
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (reg.applied_change_seq() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  ASSERT_EQ(reg.applied_change_seq(), 2);
  auto c = get([&](auto cb) { reg.active("t", "b", cb); });
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->version, 2u) << "the activation in the change log reaches new conversations";
  auto missing = get([&](auto cb) { reg.version("t", "b", 7, cb); });
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, "not_found");
  reg.stop();
}

TEST(BotRegistry, PollNowPollsAtOnceAndOnceMoreAfterAPollInFlight) {
  using answer = std::function<void(result<std::vector<store::active_change>>)>;
  std::mutex m;
  std::condition_variable cv;
  std::vector<answer> asked;  // one per poll, answered by the test
  program_source src;
  src.load = [](const std::string&, const std::string&, uint32_t, auto done) {
    done(make_error("not_found", "unused"));
  };
  src.changes = [&](int64_t, answer done) {
    std::lock_guard<std::mutex> lock(m);
    asked.push_back(std::move(done));
    cv.notify_all();
  };
  auto polls_reach = [&](std::size_t n) {
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_for(lock, 5s, [&] { return asked.size() >= n; });
  };
  auto reply = [&](std::size_t i, std::vector<store::active_change> rows) {
    answer a;
    {
      std::lock_guard<std::mutex> lock(m);
      a = asked[i];
    }
    a(std::move(rows));
  };
  // The tick is an hour: every poll after the first comes from poll_now.
  bot_registry reg(src, 1h);
  reg.start();
  ASSERT_TRUE(polls_reach(1)) << "the first poll runs at start";
  // A change is announced while that poll is in flight: it may have read the log
  // before the change, so one more poll follows as soon as it is done.
  reg.poll_now();
  reply(0, {});
  ASSERT_TRUE(polls_reach(2)) << "poll_now during a poll did not ask for another";
  reply(1, {{"t", "b", 2, 7}});
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (reg.applied_change_seq() < 7 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  EXPECT_EQ(reg.applied_change_seq(), 7);
  // Idle between ticks: poll_now wakes the poller at once.
  reg.poll_now();
  ASSERT_TRUE(polls_reach(3)) << "poll_now did not wake an idle poller";
  reply(2, {});
  {
    std::lock_guard<std::mutex> lock(m);
    EXPECT_EQ(asked.size(), 3u) << "one poll per poll_now, no more";
  }
  reg.stop();
}

}  // namespace
}  // namespace parley::actors
