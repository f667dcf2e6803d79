#pragma once
/// The cluster tests' load driver: M conversations with the counter bot
/// (tests/cluster/counter.yaml), each on a thread of its own, running turns as a client
/// behind a load balancer does: a Bot API session start, then text turns with
/// sequenceId 1, 2, ..., each sent to some node of the region and, after a failure or
/// a timeout, sent again with the same sequenceId (and text) to the next node until it
/// is answered. Every attempt and every answer is recorded.
///
/// The counter bot answers turn k with "turn k: <text k>", so an acknowledged turn lost
/// from the snapshot, or a turn run twice, shows in the answers that follow. Checks
/// (after stop(); each records gtest failures naming the conversation and turn):
///   - check_answers(): every turn was answered, each answer is the one expected, and a
///     turn delivered again after its answer (every `duplicate_every`-th turn, to
///     another node) got the recorded answer: the same reply text;
///   - probe(): one more turn per conversation, whose count proves that every
///     acknowledged turn is in the conversation's snapshot exactly once;
///   - check_transcripts(): every acknowledged turn is in Postgres' transcript_turns
///     exactly once, with the text sent and the answer given; nothing else is;
///   - recovery_ms(): per conversation, the time from an event (a kill) until it
///     answered again.
///
/// Threads: start() and stop() on the test thread; the progress queries may run while
/// the conversations do (one mutex guards the records).

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "src/http/client.hpp"
#include "src/store/catalog.hpp"
#include "src/store/postgres.hpp"
#include "tests/support/servers.hpp"

namespace parley::cluster::testing {

using clock = std::chrono::steady_clock;

/// The texts of a Bot API response's messages, one per line.
inline std::string reply_texts(const nlohmann::json& body) {
  std::string out;
  if (!body.is_object() || !body.contains("messages")) return out;
  for (const auto& m : body["messages"])
    if (m.contains("text") && m["text"].is_string()) out += m["text"].get<std::string>() + "\n";
  return out;
}

/// One request of a turn to one node.
struct attempt {
  std::string endpoint;
  int status = 0;     ///< 0: no HTTP answer (refused, reset, timed out)
  std::string error;  ///< the transport error, or the body of a non-200 answer
  clock::time_point at, done;
};

/// One turn: the session start (seq 0) or a text turn.
struct turn {
  std::int64_t seq = 0;
  std::string text;      ///< sent ("" for the start)
  std::string expected;  ///< a line the answer must contain
  std::vector<attempt> attempts;
  bool acked = false;
  std::string answer;  ///< reply_texts() of the acknowledged answer
  std::string node;    ///< its X-Parley-Node
  clock::time_point sent, answered;
  /// The same turn delivered again after its answer: the status and texts it got.
  int duplicate_status = -1;
  std::string duplicate_answer, duplicate_node;
};

struct conversation {
  std::size_t index = 0;
  std::string external_key;
  std::string session;
  std::vector<turn> turns;
  std::string fatal;  ///< why the conversation stopped early, "" when it did not
};

class driver {
 public:
  struct options {
    std::size_t conversations = 30;
    std::chrono::milliseconds attempt_timeout{3000};  ///< one request to one node
    std::chrono::milliseconds turn_deadline{30000};   ///< all attempts of one turn
    std::chrono::milliseconds retry_pause{50};        ///< between attempts of a turn
    std::chrono::milliseconds think{20};              ///< between a conversation's turns
    std::size_t duplicate_every = 5;                  ///< 0: never deliver a turn again
    std::string bot = "counter";
  };

  driver(std::function<std::vector<std::string>()> endpoints, std::string tenant,
         std::string api_key, options o)
      : endpoints_(std::move(endpoints)),
        tenant_(std::move(tenant)),
        key_(std::move(api_key)),
        opts_(std::move(o)),
        run_id_(parley::store::testing::unique_name("ext")) {
    convs_.resize(opts_.conversations);
    for (std::size_t i = 0; i < convs_.size(); ++i) {
      convs_[i].index = i;
      convs_[i].external_key = run_id_ + "-c" + std::to_string(i);
    }
  }
  ~driver() { stop(); }
  driver(const driver&) = delete;
  driver& operator=(const driver&) = delete;

  /// Starts every conversation's thread: a session start, then turns until stop().
  void start() {
    for (std::size_t i = 0; i < convs_.size(); ++i) threads_.emplace_back([this, i] { run(i); });
  }

  /// Lets each conversation finish the turn it is on (with its retries), then joins.
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

  /// A copy of the records so far.
  std::vector<conversation> records() const {
    std::lock_guard<std::mutex> lock(m_);
    return convs_;
  }

  /// Waits until every conversation has at least `n` turns answered after `since`
  /// (or stopped with a fatal error: the checks report it). False at the deadline.
  bool await_answered_after(clock::time_point since, std::size_t n,
                            std::chrono::milliseconds deadline) const {
    return parley::store::testing::eventually(
        [&] {
          std::lock_guard<std::mutex> lock(m_);
          for (const auto& c : convs_) {
            if (!c.fatal.empty()) continue;
            std::size_t k = 0;
            for (const auto& t : c.turns) k += t.acked && t.answered > since;
            if (k < n) return false;
          }
          return true;
        },
        deadline);
  }

  /// The node that answered each conversation's last turn answered before `at`
  /// (X-Parley-Node), by conversation index; "" when none was.
  std::vector<std::string> owners_before(clock::time_point at) const {
    std::lock_guard<std::mutex> lock(m_);
    std::vector<std::string> out(convs_.size());
    for (const auto& c : convs_)
      for (const auto& t : c.turns)
        if (t.acked && t.answered <= at) out[c.index] = t.node;
    return out;
  }

  /// For each conversation whose last answer before `since` came from a node in
  /// `owners`: milliseconds from `since` to its first answer after it (-1: none yet).
  std::vector<double> recovery_ms(clock::time_point since,
                                  const std::set<std::string>& owners) const {
    auto before = owners_before(since);
    std::lock_guard<std::mutex> lock(m_);
    std::vector<double> out;
    for (const auto& c : convs_) {
      if (!owners.count(before[c.index])) continue;
      double ms = -1;
      for (const auto& t : c.turns)
        if (t.acked && t.answered > since) {
          ms = std::chrono::duration<double, std::milli>(t.answered - since).count();
          break;
        }
      out.push_back(ms);
    }
    return out;
  }

  /// Every conversation ran without a fatal error; every turn it sent was answered
  /// with the expected text, from a node that named itself; every turn delivered again
  /// after its answer got the same reply text.
  void check_answers() const {
    std::lock_guard<std::mutex> lock(m_);
    for (const auto& c : convs_) {
      EXPECT_TRUE(c.fatal.empty()) << name(c) << ": " << c.fatal;
      EXPECT_GE(c.turns.size(), 2u) << name(c) << " ran no text turn";
      for (const auto& t : c.turns) {
        if (!t.acked) {
          ADD_FAILURE() << name(c) << " turn " << t.seq << " was never answered: " << describe(t);
          continue;
        }
        EXPECT_NE(t.answer.find(t.expected), std::string::npos)
            << name(c) << " turn " << t.seq << ": expected \"" << t.expected << "\", got \""
            << t.answer << "\" (a lost or twice-run turn shifts the count) " << describe(t);
        EXPECT_FALSE(t.node.empty()) << name(c) << " turn " << t.seq << ": no X-Parley-Node";
        if (t.duplicate_status >= 0) {
          EXPECT_EQ(t.duplicate_status, 200) << name(c) << " turn " << t.seq << " again";
          EXPECT_EQ(t.duplicate_answer, t.answer)
              << name(c) << " turn " << t.seq << " delivered again (to " << t.duplicate_node
              << ", first answered by " << t.node
              << ") did not get the recorded answer: the bot ran twice";
        }
      }
    }
  }

  /// One more turn per conversation (after stop()), through the nodes in turn: its
  /// count proves that each acknowledged turn is in the snapshot once.
  void probe() {
    for (auto& c : convs_) {
      if (!c.fatal.empty() || c.session.empty()) continue;
      run_turn(c, static_cast<std::int64_t>(c.turns.size()), "probe");
    }
  }

  /// Every acknowledged turn is in transcript_turns once, with its text and answer, and
  /// no turn that was not sent is there (one deadline for all conversations). transcript_turns
  /// numbers a conversation's turns itself (the start is one of them), so a turn is found by its
  /// text, which is unique per conversation. Transcripts are written off the turn's path, so this
  /// awaits them (deadline `wait`).
  void check_transcripts(parley::store::postgres_client& pg,
                         std::chrono::milliseconds wait = std::chrono::seconds(30)) const {
    auto convs = records();
    auto end = clock::now() + wait;  // one deadline for all: a lost turn costs it once
    for (const auto& c : convs) {
      if (c.session.empty()) continue;
      std::map<std::string, const turn*> sent;  // by text
      for (const auto& t : c.turns)
        if (t.acked && t.seq > 0) sent[t.text] = &t;
      std::vector<parley::store::transcript_row> rows;
      std::string why;
      parley::store::testing::eventually(
          [&] {
            auto r = parley::store::run_job_sync(pg, parley::store::transcript(tenant_, c.session));
            if (!r.ok()) {
              why = r.err().message;
              return false;
            }
            rows = *r;
            std::size_t in = 0;
            for (const auto& row : rows) in += row.direction == "in" && sent.count(row.text);
            return in >= sent.size();
          },
          std::max(std::chrono::milliseconds(0),
                   std::chrono::duration_cast<std::chrono::milliseconds>(end - clock::now())));
      std::map<std::int64_t, std::string> inbound, outbound;  // by transcript sequence
      for (const auto& row : rows)
        (row.direction == "in" ? inbound : outbound)[row.sequence] += row.text + "\n";
      int welcomes = 0;
      for (const auto& [seq, out] : outbound) welcomes += out.rfind("Counter ready.\n", 0) == 0;
      EXPECT_EQ(welcomes, 1) << name(c) << ": the welcome is in the transcript " << welcomes
                             << " times (one session start, run once)";
      std::map<std::string, int> seen;
      for (const auto& [seq, in] : inbound) {
        auto text = in.substr(0, in.size() - 1);
        ++seen[text];
        auto t = sent.find(text);
        if (t == sent.end()) {
          ADD_FAILURE() << name(c) << ": transcript_turns holds turn " << seq << " \"" << text
                        << "\", which the client was never answered";
          continue;
        }
        EXPECT_EQ(outbound[seq], t->second->answer)
            << name(c) << " turn " << t->second->seq << " (transcript sequence " << seq
            << "): the transcript's answer is not the client's";
      }
      for (const auto& [text, t] : sent)
        EXPECT_EQ(seen[text], 1) << name(c) << " turn " << t->seq << " (\"" << text
                                 << "\") is in transcript_turns " << seen[text] << " times " << why;
    }
  }

  const std::string& tenant() const { return tenant_; }

 private:
  static std::string name(const conversation& c) {
    return "conversation " + std::to_string(c.index) + " (" + c.session + ")";
  }
  static const turn* find(const conversation& c, std::int64_t seq) {
    for (const auto& t : c.turns)
      if (t.seq == seq) return &t;
    return nullptr;
  }
  static std::string describe(const turn& t) {
    std::string out = "[" + std::to_string(t.attempts.size()) + " attempts:";
    for (const auto& a : t.attempts)
      out += " " + a.endpoint + "=" + std::to_string(a.status) +
             (a.error.empty() ? "" : "(" + a.error.substr(0, 120) + ")");
    return out + "]";
  }

  void run(std::size_t i) {
    auto& c = convs_[i];
    if (!run_turn(c, 0, "")) return;
    for (std::int64_t seq = 1; !stop_; ++seq) {
      if (!run_turn(c, seq, "c" + std::to_string(i) + "-s" + std::to_string(seq))) return;
      std::this_thread::sleep_for(opts_.think);  // pacing: the client's think time
    }
  }

  /// One request to one node.
  parley::http::client_request request(const std::string& endpoint, const conversation& c,
                                       std::int64_t seq, const std::string& text) const {
    parley::http::client_request r;
    r.method = "POST";
    r.timeout = opts_.attempt_timeout;
    r.headers = {{"X-Org-Id", tenant_},
                 {"Authorization", "Bearer " + key_},
                 {"Content-Type", "application/json"}};
    if (seq == 0) {
      r.url = endpoint + "/v5.3.0/bots/" + opts_.bot + "/sessions";
      r.body = nlohmann::json{{"externalSessionKey", c.external_key},
                              {"message", nlohmann::json::object()},
                              {"forceConfig", {{"endpoint", endpoint}}}}
                   .dump();
    } else {
      r.url = endpoint + "/v5.3.0/sessions/" + c.session + "/messages";
      r.body = nlohmann::json{{"message", {{"type", "text"}, {"sequenceId", seq}, {"text", text}}}}
                   .dump();
    }
    return r;
  }

  /// Sends the turn until a node answers 200 (or the turn's deadline passes, or a node
  /// answers a client error: both stop the conversation). True when answered.
  bool run_turn(conversation& c, std::int64_t seq, const std::string& text) {
    turn t;
    t.seq = seq;
    t.text = text;
    t.expected =
        seq == 0 ? std::string("Counter ready.") : "turn " + std::to_string(seq) + ": " + text;
    t.sent = clock::now();
    auto deadline = t.sent + opts_.turn_deadline;
    std::size_t pick = c.index + static_cast<std::size_t>(seq);
    nlohmann::json body;
    std::string fatal;
    while (true) {
      auto eps = endpoints_();
      attempt a;
      a.endpoint = eps[pick++ % eps.size()];
      a.at = clock::now();
      auto res = parley::http::fetch(request(a.endpoint, c, seq, text));
      a.done = clock::now();
      if (!res.ok()) {
        a.error = res.err().code + ": " + res.err().message;
      } else {
        a.status = res->status;
        if (a.status != 200) a.error = res->body;
      }
      t.attempts.push_back(a);
      if (a.status == 200) {
        body = nlohmann::json::parse(res->body, nullptr, false);
        t.acked = true;
        t.answered = a.done;
        t.answer = reply_texts(body);
        auto node = res->header("X-Parley-Node");
        t.node = node ? *node : "";
        break;
      }
      // A server error, overload or no answer: the client tries another node. A
      // client error (4xx but 408, 429) would fail again anywhere.
      bool retry = a.status == 0 || a.status >= 500 || a.status == 408 || a.status == 429;
      if (!retry) {
        fatal = "turn " + std::to_string(seq) + " answered " + std::to_string(a.status) + " by " +
                a.endpoint + ": " + a.error;
        break;
      }
      if (clock::now() + opts_.retry_pause >= deadline) {
        fatal = "turn " + std::to_string(seq) + " unanswered after " +
                std::to_string(opts_.turn_deadline.count()) + " ms";
        break;
      }
      std::this_thread::sleep_for(opts_.retry_pause);  // the client's back-off
    }
    if (t.acked && seq == 0) {
      std::lock_guard<std::mutex> lock(m_);
      c.session = body.value("sessionId", "");
      if (c.session.empty()) fatal = "the session start answered no sessionId";
    }
    if (t.acked && !fatal.size() && opts_.duplicate_every > 0 && seq > 0 &&
        seq % static_cast<std::int64_t>(opts_.duplicate_every) == 0) {
      // The same turn again, to another node: a client that timed out just as the
      // answer came. It must get the recorded answer.
      auto eps = endpoints_();
      for (std::size_t k = 0; k < eps.size(); ++k) {
        auto res = parley::http::fetch(request(eps[pick++ % eps.size()], c, seq, text));
        if (!res.ok() || res->status >= 500) continue;  // a dead or busy node: the next
        t.duplicate_status = res->status;
        t.duplicate_answer = reply_texts(nlohmann::json::parse(res->body, nullptr, false));
        auto node = res->header("X-Parley-Node");
        t.duplicate_node = node ? *node : "";
        break;
      }
    }
    std::lock_guard<std::mutex> lock(m_);
    c.turns.push_back(std::move(t));
    if (!fatal.empty()) c.fatal = fatal + " " + describe(c.turns.back());
    return fatal.empty();
  }

  std::function<std::vector<std::string>()> endpoints_;
  std::string tenant_, key_;
  options opts_;
  std::string run_id_;
  mutable std::mutex m_;
  std::vector<conversation> convs_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
};

}  // namespace parley::cluster::testing
