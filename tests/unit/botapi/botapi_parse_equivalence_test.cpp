// The codec's own JSON parser against the nlohmann-based parsing it replaced
// (botapi_reference_parse.hpp): for every request, the same failure (status,
// class, message) or the same parsed request, field by field. Hand-picked JSON
// edge cases (numbers at the limits of 64 bits and of doubles, escapes and
// surrogates, raw and ill-formed UTF-8, byte order marks, blanks, repeated keys,
// nesting), request bodies built from them, mutations and random bytes.
// Deterministic seeds.

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tests/unit/botapi/botapi_parse_compare.hpp"
#include "tests/unit/botapi/botapi_reference_parse.hpp"
#include "tests/unit/botapi/botapi_support.hpp"

namespace parley::channels::botapi {
namespace {

constexpr const char* start_url = "/v5.3.0/bots/order-status/sessions";
constexpr const char* messages_url = "/v5.3.0/sessions/s-1/messages";
constexpr const char* session_url = "/v5.3.0/sessions/s-1";

int compared = 0, accepted = 0;

// Both parsers on the body, as a start and as a continue.
void expect_same_parse(const std::string& body) {
  ++compared;
  const auto start = testing::make_request("POST", start_url, body);
  const std::string s = compare::describe(parse_start(start));
  ASSERT_EQ(s, compare::describe(reference_parse::parse_start(start)))
      << ::testing::PrintToString(body);
  const auto cont = testing::make_request("POST", messages_url, body, {{"X-Runtime-CRC", "c"}});
  const std::string c = compare::describe(parse_continue(cont));
  ASSERT_EQ(c, compare::describe(reference_parse::parse_continue(cont)))
      << ::testing::PrintToString(body);
  accepted += (s.rfind("start;", 0) == 0) + (c.rfind("continue;", 0) == 0);
}

// JSON values that parsers disagree on when they are careless.
const std::vector<std::string>& odd_values() {
  static const std::vector<std::string> v = {
      // numbers
      "0",
      "-0",
      "1",
      "-1",
      "01",
      "-01",
      "00",
      "1.",
      ".5",
      "-.5",
      "1.5",
      "-1.5",
      "1e5",
      "1E5",
      "1e+5",
      "1e-5",
      "1e",
      "1e+",
      "1.e5",
      "+1",
      "-",
      "--1",
      "0x10",
      "1_000",
      "Infinity",
      "NaN",
      "9223372036854775807",
      "9223372036854775808",
      "-9223372036854775808",
      "-9223372036854775809",
      "18446744073709551615",
      "18446744073709551616",
      "99999999999999999999999",
      "-99999999999999999999999",
      "1e308",
      "1.7976931348623157e308",
      "1.7976931348623159e308",
      "1e309",
      "-1e309",
      "1e-324",
      "4.9e-324",
      "2.4703282292062328e-324",
      "1e-400",
      "2.2250738585072011e-308",
      "0.1",
      "0.30000000000000004",
      "123456789012345678901234567890e-20",
      "1" + std::string(400, '0'),
      "0." + std::string(400, '0') + "1",
      "3.0",
      "3e0",
      "-0.0",
      // literals
      "true",
      "false",
      "null",
      "tru",
      "nul",
      "True",
      "NULL",
      "truex",
      "nulll",
      // strings
      R"("")",
      R"("a")",
      R"("\"")",
      R"("\\")",
      R"("\/")",
      R"("\b\f\n\r\t")",
      R"("\u0000")",
      R"("\u001f")",
      R"("\u0041\u00e9\u20AC")",
      R"("\ud83d\ude00")",
      R"("\uD83D\uDE00")",
      R"("\ud83d")",
      R"("\ude00")",
      R"("\ud83d\u0041")",
      R"("\ud83dx")",
      R"("\ud83d\")",
      R"("\u12")",
      R"("\u12G4")",
      R"("\x41")",
      R"("\a")",
      R"("\)",
      R"("\')",
      "\"\\u",
      "\"a\tb\"",
      "\"a\nb\"",
      "\"\x01\"",
      "\"\x7f\"",
      "\"\x1f\"",
      "\"caf\xc3\xa9\"",
      "\"\xe2\x82\xac\"",
      "\"\xf0\x9f\x98\x80\"",
      "\"\xc3\"",
      "\"\xc3(\"",
      "\"\xe2\x82\"",
      "\"\xed\xa0\x80\"",
      "\"\xef\xbf\xbf\"",
      "\"\xf4\x8f\xbf\xbf\"",
      "\"\xf4\x90\x80\x80\"",
      "\"\xc0\xaf\"",
      "\"\xe0\x80\xaf\"",
      "\"\xe0\xa0\x80\"",
      "\"\xf0\x80\x80\x80\"",
      "\"\xf0\x90\x80\x80\"",
      "\"\x80\"",
      "\"\xff\"",
      "\"unterminated",
      "\"a\\\"",
      "'single'",
      R"("2021-09-21")",
      R"("2018-09-21T14:30:00")",
      R"("USD 10.40")",
      R"(" 12.5 ")",
      R"("EUR 1e3")",
      R"("USD -0")",
      R"("USD nan")",
      R"("USD inf")",
      R"("1e999")",
      R"("Error")",
      R"("NoAgentAvailable")",
      R"("UserRequest")",
      R"("text")",
      // containers
      "[]",
      "{}",
      "[1,]",
      "[,1]",
      "[1 2]",
      "{\"a\":1,}",
      "{\"a\" 1}",
      "{a:1}",
      "{\"a\":}",
      "[[]]",
      "[{}]",
      "{\"a\":{\"b\":[1,{\"c\":null}]}}",
      "[1,\"x\",true,null,{},[]]",
      R"({"b":1,"a":2,"b":3})",
      R"({"":1})",
      R"({"a":1,"a":{"x":[1,2]}})",
      R"([{"type":"number","value":1},{"type":"text","value":2},{"other":1},3])",
      R"([{"name":"a","type":"text","value":"x"},{"name":"a","type":"number","value":2}])",
      R"([{"name":"b","type":"object","value":[{"name":"z","type":"boolean","value":true}]}])",
      std::string(31, '[') + std::string(31, ']'),
      std::string(33, '[') + std::string(33, ']'),
  };
  return v;
}

// Bodies with an odd value at one place of a valid request.
std::vector<std::string> bodies_with(const std::string& x) {
  return {
      x,
      R"({"message":{"type":"text","sequenceId":)" + x + R"(,"text":"hi"}})",
      R"({"message":{"type":"text","sequenceId":1,"text":)" + x + "}}",
      R"({"message":{"type":)" + x + R"(,"sequenceId":1,"text":"hi"}})",
      R"({"message":{"type":"choice","sequenceId":2,"choiceIndex":)" + x + "}}",
      R"({"message":{"type":"choice","sequenceId":2,"choiceId":)" + x + "}}",
      R"({"message":{"type":"transferFailed","sequenceId":2,"reason":)" + x + "}}",
      R"({"message":{"type":"setVariables","sequenceId":3,"variables":[{"name":"n","type":"number","value":)" +
          x + "}]}}",
      R"({"message":{"type":"setVariables","sequenceId":3,"variables":[{"name":"m","type":"money","value":)" +
          x + "}]}}",
      R"({"message":{"type":"setVariables","sequenceId":3,"variables":[{"name":"l","type":"list","value":)" +
          x + "}]}}",
      R"({"message":{"type":"setVariables","sequenceId":3,"variables":[{"name":"l","type":"list","value":[)" +
          x + "]}]}}",
      R"({"message":{"type":"setVariables","sequenceId":3,"variables":[{"name":"o","type":"object","value":)" +
          x + "}]}}",
      R"({"message":{"type":"text","sequenceId":1,"text":"x"},"responseOptions":{"variables":{"include":true,"onlyChanged":false,"filter":)" +
          x + "}}}",
      R"({"message":{"type":"text","sequenceId":1,"text":"x"},"responseOptions":)" + x + "}",
      R"({"externalSessionKey":)" + x + R"(,"forceConfig":{"endpoint":"e"}})",
      R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"},"tz":)" + x + "}",
      R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"},"message":{"text":)" + x + "}}",
      R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"},"variables":[{"name":"d","type":"date","value":)" +
          x + "}]}",
      R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"},"variables":[{"name":"t","type":"dateTime","value":)" +
          x + "}]}",
      R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"},"variables":[{"name":"p","type":"text","value":{"x":)" +
          x + "}}]}",
      R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"},"referrers":[{"type":"Salesforce:Core:Bot:Id","value":)" +
          x + "}]}",
      R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"},"variables":[{"name":"l","type":"list","value":[{"type":"text","value":{"k":)" +
          x + "}}]}]}",
  };
}

TEST(BotApiParseEquivalence, OddValuesInEveryPlace) {
  for (const auto& x : odd_values())
    for (const auto& body : bodies_with(x)) {
      expect_same_parse(body);
      if (HasFatalFailure()) return;
    }
}

TEST(BotApiParseEquivalence, FramingBlanksAndByteOrderMarks) {
  const std::string ok = R"({"message":{"type":"text","sequenceId":1,"text":"hi"}})";
  for (const std::string& pre : std::vector<std::string>{
           "", " ", "\t", "\n", "\r\n", "\f", "\v", "\xEF\xBB\xBF", "\xEF\xBB\xBF ",
           " \xEF\xBB\xBF", "\xEF\xBB", "\xEF", std::string(1, '\0')})
    for (const std::string& post :
         std::vector<std::string>{"", " ", "\n", "\t\r\n ", "x", ",", "}", "{}", "\f",
                                  std::string(1, '\0'), "\xEF\xBB\xBF", "/* */", "// c"}) {
      expect_same_parse(pre + ok + post);
      expect_same_parse(pre + "{}" + post);
      expect_same_parse(pre + post);
      if (HasFatalFailure()) return;
    }
  // Blanks between every token.
  expect_same_parse(
      " {\n\t\"message\" :\r{ \"type\" : \"text\" , \"sequenceId\" : 1 , \"text\" : \"hi\" } } ");
}

// What a lazy (On-Demand) reader only sees when it visits everything: scalar roots
// with and without trailing content, bad atoms and commas deep inside, escaped and
// repeated keys, bytes after a NUL.
TEST(BotApiParseEquivalence, ScalarRootsTrailingContentAndUnvisitedValues) {
  const std::string ok = R"({"message":{"type":"text","sequenceId":1,"text":"hi"}})";
  for (
      const std::string& body : std::vector<std::string>{
          R"("abc")",
          R"("abc" x)",
          R"("message":1)",
          "null",
          "null 1",
          "1",
          "1 2",
          "-0 ",
          "1x",
          "true",
          "true x",
          "false,",
          R"("\ud800")",
          "[]",
          "[] x",
          "[1] [2]",
          "[1x]",
          "[1,]",
          "[,1]",
          "[tru]",
          "[nul]",
          "[nulll]",
          R"([""])",
          R"(["\x"])",
          "{}{}",
          "{} x",
          R"({"a":1x})",
          R"({"a":[1,]})",
          R"({"a":tru})",
          R"({"a":nul})",
          R"({"a":"\u12"})",
          R"({"a":1,})",
          R"({,"a":1})",
          R"({"a":[1:2]})",
          R"({"a":[1,"b":2]})",
          R"({"a":["b":2]})",
          R"({"a":1:2})",
          R"({"a":"b":2})",
          R"({"a":[true:1]})",
          R"({"a":[null:1]})",
          R"({"a":[{}:1]})",
          R"({"a":[[]:1]})",
          R"({"a" 1})",
          R"({"a":1 "b":2})",
          R"({1:2})",
          std::string("{\"a\":\"\x01\"}"),
          ok + std::string(1, '\0') + "\xff\xfe garbage",
          R"({"message":{"type":"text","sequenceId":1,"text":"hi","x":[1,2,{"y":[tru]}]}})",
          R"({"message":{"type":"text","sequenceId":1,"text":"hi","x":[1,2,{"y":[1e999]}]}})",
          R"({"message":{"type":"text","sequenceId":1,"text":"hi","x":{"y":"\udc00"}}})",
          R"({"\u006dessage":{"type":"text","sequenceId":1,"te\u0078t":"hi"}})",
          R"({"message":{"type":"text","sequenceId":1,"text":"a"},"message":{"type":"text","sequenceId":2,"text":"b"}})",
          R"({"message":{"type":"text","sequenceId":1,"text":"hi"},"responseOptions":{"intents":true,"intents":false}})"}) {
    expect_same_parse(body);
    if (HasFatalFailure()) return;
  }
}

// The seeds of the robustness test and more, mutated.
const std::vector<std::string>& seeds() {
  static const std::vector<std::string> s = {
      R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"},"message":{"text":"hi"},
          "variables":[{"name":"a","type":"object","value":[{"name":"b","type":"list","value":[{"type":"money","value":"USD 1.5"}]}]},
                       {"name":"d","type":"dateTime","value":"2018-09-21T14:30:00"}],
          "referrers":[{"type":"Salesforce:Core:Bot:Id","value":"0Xx"}],"tz":"Europe/Paris",
          "responseOptions":{"variables":{"include":true,"onlyChanged":false,"filter":["a"]},"intents":true}})",
      R"({"message":{"type":"text","sequenceId":1,"inReplyToMessageId":"m-1","text":"where is my order"}})",
      R"({"message":{"type":"choice","sequenceId":2,"choiceIndex":1,"choiceId":"x"}})",
      R"({"message":{"type":"setVariables","sequenceId":3,"variables":[{"name":"n","type":"number","value":1e308},
          {"name":"l","type":"list","value":[{"type":"number","value":-0},{"k":[1,2.5,"\u00e9"]},null]},
          {"name":"o","type":"object","value":[{"name":"z","type":"text","value":"1"},{"name":"a","type":"boolean","value":false}]}]}})",
      R"({"message":{"type":"transferFailed","sequenceId":4,"reason":"Error","description":"\u0000\ud83d\ude00"}})",
      R"({"message":{"type":"endSession","sequenceId":5,"reason":"Other"}})",
      R"({"message":{"type":"redirect","sequenceId":6,"dialogId":"main"},"responseOptions":{"metrics":true,"entities":false}})",
      R"({"message":{"type":"transferSucceeded","sequenceId":7}})",
      R"({"message":{"type":"text","sequenceId":8,"text":"a","type":"choice","choiceIndex":2,"text":"b"}})",
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
                                       "18446744073709551616",
                                       "\\",
                                       "\\ud83d",
                                       "\\udc00",
                                       "\\u00e9",
                                       "\xe2\x82\xac",
                                       "\xed\xa0\x80",
                                       " ",
                                       "\n",
                                       "\t",
                                       "-0",
                                       "01",
                                       "1.",
                                       "e5",
                                       "\"text\"",
                                       "\"message\"",
                                       "\"choice\"",
                                       "\"choiceIndex\"",
                                       "\x01",
                                       "\xef\xbb\xbf"};
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

TEST(BotApiParseEquivalence, MutatedAndRandomBodies) {
  std::mt19937_64 rng(20261126);
  compared = accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string body;
    if (i % 7 == 0) {
      body.resize(rng() % 200);
      for (auto& c : body) c = static_cast<char>(rng() & 0xff);
    } else if (i % 3 == 0) {
      const auto bodies = bodies_with(odd_values()[rng() % odd_values().size()]);
      body = bodies[rng() % bodies.size()];
      if (rng() % 2) body = mutate(body, rng);
    } else {
      body = mutate(seeds()[rng() % seeds().size()], rng);
    }
    expect_same_parse(body);
    if (HasFatalFailure()) return;
  }
  // Both outcomes were compared in numbers.
  EXPECT_GT(accepted, 400) << compared;
  EXPECT_GT(2 * compared - accepted, 20000) << compared;
}

TEST(BotApiParseEquivalence, HeadersPathsAndEnd) {
  std::mt19937_64 rng(7);
  auto random_text = [&](std::size_t max) {
    std::string s(rng() % (max + 1), '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 3 ? 0x20 + rng() % 95 : rng() & 0xff);
    return s;
  };
  const char* paths[] = {start_url,
                         messages_url,
                         session_url,
                         "/status",
                         "/versions",
                         "/v5.3.0/sessions/",
                         "/v5.3.0/sessions//messages",
                         "/v5.3.0/bots/a b/sessions",
                         "/a/b/c/d/e/f/g/h/i/j/k"};
  for (int i = 0; i < 5000; ++i) {
    std::string path = rng() % 3 ? std::string(paths[rng() % std::size(paths)]) : random_text(40);
    if (rng() % 4 == 0) path = mutate(path, rng);
    http::header_list headers;
    if (rng() % 3 == 0)
      headers.emplace_back("Authorization",
                           rng() % 2 ? "Bearer " + random_text(10) : random_text(12));
    if (rng() % 3 == 0) headers.emplace_back("X-Org-Id", random_text(10));
    if (rng() % 2 == 0)
      headers.emplace_back("X-Session-End-Reason", rng() % 2 ? " UserRequest\t" : random_text(12));
    if (rng() % 3 == 0) headers.emplace_back("X-Request-ID", random_text(30));
    if (rng() % 3 == 0) headers.emplace_back("X-Runtime-CRC", random_text(20));
    const std::string method = rng() % 2 ? "POST" : (rng() % 2 ? "DELETE" : random_text(6));
    auto req = testing::make_request(method, path, seeds()[rng() % seeds().size()], headers);
    // Names in any case, repeated (the first counts), near misses.
    static const char* names[] = {
        "authorization",        "AUTHORIZATION",        "x-org-id",  "X-ORG-ID", "x-request-id",
        "x-runtime-crc",        "x-session-end-reason", "X-Org-Ids", "X-Org-I",  "Authorisation",
        "X-Session-End-Reasons"};
    for (int k = static_cast<int>(rng() % 4); k > 0; --k) {
      const std::string name = names[rng() % std::size(names)];
      const std::string value = rng() % 2 ? "Bearer tok" : (rng() % 2 ? "Other" : random_text(8));
      if (rng() % 2)
        req.headers.emplace_back(name, value);
      else
        req.headers.insert(req.headers.begin(), {name, value});
    }
    if (rng() % 2) req.request_id = random_text(20);
    ASSERT_EQ(compare::describe(match_route(req.method, req.path)),
              compare::describe(reference_parse::match_route(req.method, req.path)));
    ASSERT_EQ(compare::describe(parse_end(req)),
              compare::describe(reference_parse::parse_end(req)));
    ASSERT_EQ(compare::describe(parse_start(req)),
              compare::describe(reference_parse::parse_start(req)));
    ASSERT_EQ(compare::describe(parse_continue(req)),
              compare::describe(reference_parse::parse_continue(req)));
  }
}

TEST(BotApiParseEquivalence, RepeatedKeysKeepTheLastValue) {
  for (
      const std::string& body : std::vector<std::string>{
          R"({"message":{"type":"text","sequenceId":1,"text":"a","text":"b"}})",
          R"({"message":{"type":"image","type":"text","sequenceId":1,"text":"x"}})",
          R"({"message":{"type":"text","type":"image","sequenceId":1,"text":"x"}})",
          R"({"message":{"type":"text","sequenceId":"1","sequenceId":2,"text":"x"}})",
          R"({"message":1,"message":{"type":"text","sequenceId":1,"text":"x"}})",
          R"({"message":{"type":"text","sequenceId":1,"text":"x"},"message":[]})",
          R"({"message":{"type":"text","sequenceId":1,"text":"x"},"responseOptions":{"intents":"x","intents":true}})",
          R"({"message":{"type":"text","sequenceId":1,"text":"x"},"responseOptions":{"intents":true,"intents":1}})",
          R"({"message":{"type":"setVariables","sequenceId":1,"variables":[{"name":"a","name":"b","type":"text","value":"x","value":null}]}})",
          R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e","endpoint":"f"},"externalSessionKey":"j"})",
          R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"},"tz":"a","tz":null})",
      }) {
    expect_same_parse(body);
    if (HasFatalFailure()) return;
  }
}

TEST(BotApiParseEquivalence, LongAndEscapedStrings) {
  // Strings longer than any buffer, escapes at the start, middle and end, many
  // strings with escapes in one body (they share one decoding buffer).
  std::string many = R"({"message":{"type":"setVariables","sequenceId":1,"variables":[)";
  for (int i = 0; i < 200; ++i) {
    if (i) many += ',';
    many += R"({"name":"v\u00e9)" + std::to_string(i) + R"(","type":"text","value":"\"q\"\n)" +
            std::string(static_cast<std::size_t>(i), 'x') + R"(\ud83d\ude00"})";
  }
  many += "]}}";
  expect_same_parse(many);
  for (const std::string& s : std::vector<std::string>{
           std::string(5000, 'a'), "\\n" + std::string(5000, 'b'), std::string(5000, 'c') + "\\t",
           std::string(3000, '\xc3') + "\xa9", "\\u00e9" + std::string(1000, 'd') + "\\\\"}) {
    expect_same_parse(R"({"message":{"type":"text","sequenceId":1,"text":")" + s + "\"}}");
    expect_same_parse(R"({"externalSessionKey":")" + s + R"(","forceConfig":{"endpoint":")" + s +
                      "\"}}");
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace parley::channels::botapi
