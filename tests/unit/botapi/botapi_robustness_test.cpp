// Bot API codec under hostile input: thousands of random and mutated requests
// (deterministic seed). The parsers must never crash or throw, every failure must
// carry a status and a message naming its field, and whatever parses must render
// a contract-valid error or success. Runs under ASan/UBSan in CI.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "tests/unit/botapi/botapi_support.hpp"

namespace parley::channels::botapi {
namespace {

using namespace testing;

const std::vector<std::string>& seeds() {
  static const std::vector<std::string> s = {
      R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"},"message":{"text":"hi"},
          "variables":[{"name":"a","type":"object","value":[{"name":"b","type":"list","value":[{"type":"money","value":"USD 1.5"}]}]},
                       {"name":"d","type":"dateTime","value":"2018-09-21T14:30:00"}],
          "responseOptions":{"variables":{"include":true,"onlyChanged":false,"filter":["a"]},"intents":true}})",
      R"({"message":{"type":"text","sequenceId":1,"text":"where is my order"}})",
      R"({"message":{"type":"choice","sequenceId":2,"choiceIndex":1,"choiceId":"x"}})",
      R"({"message":{"type":"setVariables","sequenceId":3,"variables":[{"name":"n","type":"number","value":1e308}]}})",
      R"({"message":{"type":"transferFailed","sequenceId":4,"reason":"Error","description":"\u0000\ud83d\ude00"}})",
      R"({"message":{"type":"endSession","sequenceId":5,"reason":"Other"}})",
  };
  return s;
}

std::string mutate(std::string s, std::mt19937_64& rng) {
  static const std::string tokens[] = {"{",
                                       "}",
                                       "[",
                                       "]",
                                       "\"",
                                       ",",
                                       ":",
                                       "null",
                                       "true",
                                       "-1",
                                       "1e999",
                                       "\\u0000",
                                       "\xff",
                                       "\xc3",
                                       "0.5",
                                       "\"type\"",
                                       "\"value\"",
                                       "[[[[[[[[",
                                       "\"sequenceId\"",
                                       "18446744073709551616"};
  const int edits = 1 + static_cast<int>(rng() % 6);
  for (int e = 0; e < edits; ++e) {
    const std::size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 5) {
      case 0:
        if (!s.empty() && pos < s.size()) s.erase(pos, 1 + rng() % 8);
        break;
      case 1:
        s.insert(pos, tokens[rng() % std::size(tokens)]);
        break;
      case 2:
        if (pos < s.size()) s[pos] = static_cast<char>(rng() & 0xff);
        break;
      case 3:
        if (pos < s.size()) s.resize(pos);
        break;
      default: {
        const std::size_t from = s.empty() ? 0 : rng() % s.size();
        s.insert(pos, s.substr(from, rng() % 32));
      }
    }
  }
  return s;
}

std::string random_bytes(std::mt19937_64& rng) {
  std::string s(rng() % 256, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

void check_failure(const failure& f, const http::request& req) {
  ASSERT_TRUE(f.status == 400 || f.status == 401 || f.status == 404) << f.status;
  ASSERT_FALSE(f.message.empty());
  ASSERT_NE(f.message.find(": "), std::string::npos) << f.message;  // "field: complaint"
  auto resp = render_failure(f, req, 1);
  auto v =
      contract().validate_response(messages_path, "POST", resp.status, std::string_view(resp.body));
  ASSERT_TRUE(v.empty()) << test::to_string(v);
}

TEST(BotApiRobustness, RandomAndMutatedBodiesNeverCrash) {
  std::mt19937_64 rng(20261126);
  const char* urls[] = {"/v5.3.0/bots/b/sessions", "/v5.3.0/sessions/s/messages"};
  int parsed_ok = 0, failed = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string body =
        (i % 5 == 0) ? random_bytes(rng) : mutate(seeds()[rng() % seeds().size()], rng);
    for (const char* url : urls) {
      auto req = make_request("POST", url, body);
      if (url[8] == 'b') {
        auto r = parse_start(req);
        if (r.ok()) {
          ++parsed_ok;
          (void)r->bot_variables();
        } else {
          ++failed;
          check_failure(r.err(), req);
        }
      } else {
        auto r = parse_continue(req);
        if (r.ok()) {
          ++parsed_ok;
          v1::TurnResult last;
          (void)to_input(*r, &last, 0);
        } else {
          ++failed;
          check_failure(r.err(), req);
        }
      }
      if (HasFatalFailure()) return;
    }
  }
  // Both branches were exercised: mutations keep some bodies valid.
  EXPECT_GT(parsed_ok, 20);
  EXPECT_GT(failed, 1000);
}

TEST(BotApiRobustness, RandomHeadersAndPathsNeverCrash) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    http::request req =
        make_request(i % 2 ? "DELETE" : "POST", "/v5.3.0/sessions/s", seeds()[1],
                     {{"Authorization", "Bearer " + random_bytes(rng).substr(0, 20)},
                      {"X-Org-Id", random_bytes(rng).substr(0, 20)},
                      {"X-Session-End-Reason", random_bytes(rng).substr(0, 12)},
                      {"X-Request-ID", random_bytes(rng).substr(0, 40)}});
    req.path = (i % 3 == 0) ? random_bytes(rng) : mutate("/v5.3.0/sessions/s-1", rng);
    req.request_id.clear();
    auto route = match_route(req.method, req.path);
    if (!route.ok()) {
      ASSERT_TRUE(route.err().status == 404 || route.err().status == 405);
      auto resp = render_failure(route.err(), req, 0);
      // Header values must never carry control characters.
      for (const auto& [k, v] : resp.headers)
        for (char c : v) ASSERT_TRUE(c >= 0x20 && c < 0x7f) << k;
    }
    auto e = parse_end(req);
    if (!e.ok()) check_failure(e.err(), req);
    auto c = parse_continue(req);
    if (!c.ok()) check_failure(c.err(), req);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace parley::channels::botapi
