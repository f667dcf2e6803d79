// parleyctl replay TENANT BOT --candidate FILE [--since 24h] [--limit N] [--json]: runs
// a bot's recorded conversations (read page by page from the admin API,
// GET /admin/v1/tenants/{t}/bots/{b}/conversations) through a candidate bot file,
// locally and deterministically (src/bot/replay.hpp), and reports the conversations
// whose replies or outcome differ.
//
// Exit codes: 0 none differ, 1 some differ, 2 usage, candidate or connection error.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

#include "src/app/parleyctl.hpp"
#include "src/bot/replay.hpp"
#include "src/http/client.hpp"

namespace parley::ctl {

namespace {

using json = nlohmann::json;

struct replay_options {
  std::string tenant, bot, candidate, since = "24h", url, token;
  int limit = 1000;
  bool json_out = false;
};

/// One page of recorded conversations; an error message (for exit code 2) otherwise.
result<json> fetch_page(const replay_options& o, const std::string& base, const std::string& token,
                        int limit, const std::string& after) {
  http::client_request req;
  req.method = "GET";
  req.url = base + "/admin/v1/tenants/" + seg(o.tenant) + "/bots/" + seg(o.bot) +
            "/conversations?since=" + seg(o.since) + "&limit=" + std::to_string(limit);
  if (!after.empty()) req.url += "&after=" + seg(after);
  req.headers.emplace_back("Authorization", "Bearer " + token);
  req.headers.emplace_back("Accept", "application/json");
  req.timeout = std::chrono::seconds(60);
  auto r = http::fetch(req);
  if (!r) return error{"unreachable", "GET " + req.url + ": " + r.err().message};
  auto body = json::parse(r->body, nullptr, false);
  if (r->status != 200) {
    std::string msg = "HTTP " + std::to_string(r->status);
    if (body.is_object() && body.contains("error") && body["error"].is_object())
      msg = body["error"].value("message", msg) + " (" + body["error"].value("code", "") +
            ", HTTP " + std::to_string(r->status) + ")";
    return error{"refused", msg};
  }
  if (!body.is_object() || !body.contains("conversations") || !body["conversations"].is_array())
    return error{"bad_answer", "GET " + req.url + ": the answer holds no 'conversations' list"};
  return body;
}

/// The recorded conversation of one element of the route's 'conversations'.
bot::recorded_conversation to_recorded(const json& c) {
  bot::recorded_conversation out;
  out.session_id = c.value("session_id", "");
  out.version = c.value("version", 0);
  out.truncated = c.value("truncated", false);
  for (const auto& t : c.value("turns", json::array())) {
    bot::recorded_turn turn;
    turn.sequence = t.value("sequence", std::int64_t{0});
    turn.user = t.value("inbound", "");
    for (const auto& r : t.value("replies", json::array()))
      turn.replies.push_back(r.is_string() ? r.get<std::string>() : std::string());
    const auto record = t.find("record");
    if (record != t.end() && record->is_object()) {
      // A record that does not parse leaves has_record false: the conversation is skipped.
      auto parsed = bot::parse_record(record->dump(), turn);
      (void)parsed;
    }
    out.turns.push_back(std::move(turn));
  }
  return out;
}

const char* verdict_name(bot::replay_verdict v) {
  switch (v) {
    case bot::replay_verdict::same:
      return "same";
    case bot::replay_verdict::differs:
      return "differs";
    default:
      return "skipped";
  }
}

json diff_json(const bot::turn_diff& d) {
  json j = {{"turn", d.turn},
            {"user", d.user},
            {"recorded", d.recorded},
            {"candidate", d.candidate},
            {"recorded_outcome", d.recorded_outcome},
            {"candidate_outcome", d.candidate_outcome}};
  if (!d.reason.empty()) j["reason"] = d.reason;
  return j;
}

void print_diff(const bot::turn_diff& d) {
  std::cout << "  turn " << d.turn << "  user: " << json(d.user).dump() << "\n";
  if (d.recorded != d.candidate) {
    for (const auto& r : d.recorded) std::cout << "    - " << json(r).dump() << "\n";
    for (const auto& c : d.candidate) std::cout << "    + " << json(c).dump() << "\n";
  }
  if (d.recorded_outcome != d.candidate_outcome)
    std::cout << "    outcome: recorded " << d.recorded_outcome << ", candidate "
              << d.candidate_outcome << "\n";
  if (!d.reason.empty()) std::cout << "    stopped: " << d.reason << "\n";
}

int run_replay(const replay_options& o) {
  if (o.limit < 1) {
    std::cerr << "parleyctl replay: --limit must be at least 1\n";
    return 2;
  }
  auto compiled = bot::compile_file(o.candidate);
  if (!compiled.ok()) {
    for (const auto& d : compiled.diagnostics) std::cerr << d.to_string() << "\n";
    std::cerr << o.candidate << ": the candidate does not compile\n";
    return 2;
  }
  auto prog = bot::load(std::move(*compiled.program));
  if (!prog) {
    std::cerr << o.candidate << ": " << prog.err().message << "\n";
    return 2;
  }
  const std::string base = admin_base(admin_target{o.url, o.token, false});
  std::string token = o.token.empty() ? env_or("PARLEY_ADMIN_TOKEN", "") : o.token;
  if (token.empty()) {
    std::cerr << "parleyctl: no admin token: pass --token or set PARLEY_ADMIN_TOKEN\n";
    return 2;
  }

  std::size_t replayed = 0, same = 0, differ = 0, skipped = 0;
  json reported = json::array();
  const bool text = !o.json_out;
  const auto started = std::chrono::steady_clock::now();
  std::string after;
  while (replayed < static_cast<std::size_t>(o.limit)) {
    const int want = std::min(500, o.limit - static_cast<int>(replayed));
    auto page = fetch_page(o, base, token, want, after);
    if (!page) {
      std::cerr << "parleyctl replay: " << page.err().message << "\n";
      return 2;
    }
    for (const auto& c : (*page)["conversations"]) {
      auto r = bot::replay(**prog, to_recorded(c));
      ++replayed;
      if (r.verdict == bot::replay_verdict::same) {
        ++same;
        continue;
      }
      (r.verdict == bot::replay_verdict::differs ? differ : skipped)++;
      if (text) {
        std::cout << "conversation " << r.session_id << " (version " << c.value("version", 0)
                  << ", started " << c.value("started_at", "") << "): " << verdict_name(r.verdict);
        if (!r.reason.empty()) std::cout << ": " << r.reason;
        std::cout << "\n";
        for (const auto& d : r.diffs) print_diff(d);
        std::cout << "\n";
      }
      json j = {{"session_id", r.session_id},
                {"version", c.value("version", 0)},
                {"started_at", c.value("started_at", "")},
                {"verdict", verdict_name(r.verdict)},
                {"reason", r.reason},
                {"diffs", json::array()}};
      for (const auto& d : r.diffs) j["diffs"].push_back(diff_json(d));
      reported.push_back(std::move(j));
    }
    const auto& next = (*page)["next"];
    if (!next.is_string() || (*page)["conversations"].empty()) break;
    after = next.get<std::string>();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (o.json_out) {
    std::cout << json{{"tenant", o.tenant}, {"bot", o.bot},         {"candidate", o.candidate},
                      {"since", o.since},   {"replayed", replayed}, {"same", same},
                      {"differ", differ},   {"skipped", skipped},   {"conversations", reported}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "replayed " << replayed << " conversation(s) of bot " << o.bot << " (tenant "
              << o.tenant << ", since " << o.since << ") against " << o.candidate << ": " << same
              << " same, " << differ << " differ, " << skipped << " skipped (" << std::fixed
              << std::setprecision(2) << seconds << " s)\n";
  }
  return differ > 0 ? 1 : 0;
}

}  // namespace

void add_replay_commands(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "replay",
      "Run a bot's recorded conversations through a candidate bot file and show where "
      "its replies or outcome differ (exit 1 when any differ)");
  static replay_options o;
  cmd->add_option("tenant", o.tenant, "tenant id")->required();
  cmd->add_option("bot", o.bot, "bot id")->required();
  cmd->add_option("--candidate", o.candidate, "the candidate bot file")->required();
  cmd->add_option("--since", o.since,
                  "conversations started within this duration: 30m, 24h, 7d, or all (default 24h)");
  cmd->add_option("--limit", o.limit,
                  "at most this many conversations, oldest first (default 1000)");
  cmd->add_option("--url", o.url, "node base URL (default: $PARLEY_URL or http://127.0.0.1:8080)");
  cmd->add_option("--token", o.token, "admin token (default: $PARLEY_ADMIN_TOKEN)");
  cmd->add_flag("--json", o.json_out, "print one JSON object");
  cmd->callback([&exit_code] { exit_code = run_replay(o); });
}

}  // namespace parley::ctl
