// The codec's hand-written JSON writer against the nlohmann rendering it replaced
// (botapi_reference.hpp): every response must be the same bytes, headers and
// status, over hand-picked and thousands of random replies and turns (texts with
// quotes, backslashes, control characters, valid and invalid UTF-8; choices,
// transfers, endings; variables of every type, nested past the depth limit;
// intents, entities; odd doubles and extreme integers). Deterministic seeds.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/botapi/botapi_reference.hpp"
#include "tests/unit/botapi/botapi_support.hpp"

namespace parley::channels::botapi {
namespace {

void expect_same(const http::response& got, const http::response& want, const std::string& what) {
  ASSERT_EQ(got.body, want.body) << what;
  ASSERT_EQ(got.status, want.status) << what;
  ASSERT_EQ(got.content_type, want.content_type) << what;
  ASSERT_EQ(got.headers, want.headers) << what;
}

// ------------------------------------------------------------------ random input

class generator {
 public:
  explicit generator(std::uint64_t seed) : rng_(seed) {}

  std::uint64_t next() { return rng_(); }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng_() % n); }
  bool chance(int percent) { return below(100) < static_cast<std::size_t>(percent); }

  // Text that exercises the string escaping: printable ASCII, characters that
  // must be escaped, valid UTF-8 of every length (at the edges of each range) and
  // the kinds of invalid UTF-8 (stray continuation bytes, bytes that never start
  // a sequence, overlong forms, surrogates, above U+10FFFF, truncated sequences).
  std::string text(std::size_t max_pieces = 12) {
    static const std::vector<std::string> pieces = {
        "a",
        "Hello",
        " ",
        "order AB-123456",
        "0",
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "/",
        "'",
        "\"",
        "\\",
        "\\\"",
        "\"\\",
        "\b",
        "\f",
        "\n",
        "\r",
        "\t",
        std::string(1, '\0'),
        "\x01",
        "\x1f",
        "\x7f",
        "\x0b",
        "\x1b[0m",
        "\xc2\x80",
        "\xc3\xa9",
        "\xdf\xbf",  // 2 bytes
        "\xe0\xa0\x80",
        "\xe2\x82\xac",
        "\xed\x9f\xbf",
        "\xee\x80\x80",
        "\xef\xbf\xbd",
        "\xef\xbf\xbf",  // 3 bytes
        "\xf0\x90\x80\x80",
        "\xf0\x9f\x98\x80",
        "\xf4\x8f\xbf\xbf",  // 4 bytes
        "\x80",
        "\xbf",
        "\xc0",
        "\xc1",
        "\xc0\xaf",
        "\xc2",
        "\xe2\x82",
        "\xe0\x80\x80",
        "\xe0\x9f\xbf",
        "\xed\xa0\x80",
        "\xed\xbf\xbf",
        "\xf0\x80\x80\x80",
        "\xf0\x8f\xbf\xbf",
        "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80",
        "\xf8",
        "\xfe",
        "\xff",
        "\xf0\x9f\x98",
        "\xf0\x9f",
        "\xf0",
        "\xe2",
        "\xc3\xc3\xa9",
        "\xe2\x28\xa1",
        "\xf0\x28\x8c\xbc",
        "\\u0000",
        "\\ud83d\\ude00",
        "caf\xc3",
    };
    std::string s;
    const std::size_t n = below(max_pieces + 1);
    for (std::size_t i = 0; i < n; ++i) {
      if (chance(10))
        s += static_cast<char>(next() & 0xff);  // any byte at all
      else
        s += pieces[below(pieces.size())];
    }
    return s;
  }

  std::string ascii_id() {
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789-._~:";
    std::string s;
    const std::size_t n = 1 + below(40);
    for (std::size_t i = 0; i < n; ++i) s += chars[below(sizeof chars - 1)];
    return s;
  }

  // Mostly well-behaved ids, sometimes hostile text.
  std::string id() { return chance(80) ? ascii_id() : text(6); }

  double number() {
    switch (below(14)) {
      case 0:
        return static_cast<double>(static_cast<std::int64_t>(next() % 2000001) - 1000000);
      case 1:
        return static_cast<double>(static_cast<std::int64_t>(next() % 20001) - 10000) / 100.0;
      case 2:
        return std::ldexp(static_cast<double>(next() >> 11), -static_cast<int>(below(80)));
      case 3:
        return std::numeric_limits<double>::quiet_NaN();
      case 4:
        return chance(50) ? std::numeric_limits<double>::infinity()
                          : -std::numeric_limits<double>::infinity();
      case 5:
        return chance(50) ? -0.0 : 0.0;
      case 6: {
        const double edges[] = {9007199254740991.0,
                                9007199254740992.0,
                                -9007199254740992.0,
                                9007199254740993.0,
                                1e15,
                                1e16,
                                1e17,
                                1e21,
                                1e22,
                                1e300,
                                -1e-7,
                                1e-5,
                                1e-4,
                                0.1,
                                0.2,
                                0.3,
                                1.0 / 3.0,
                                2.0 / 3.0,
                                std::numeric_limits<double>::denorm_min(),
                                std::numeric_limits<double>::min(),
                                std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::lowest(),
                                10.4,
                                10.45,
                                123456.789};
        return edges[below(std::size(edges))];
      }
      case 7: {
        double d;
        std::uint64_t bits = next();
        std::memcpy(&d, &bits, sizeof d);
        return d;  // any bit pattern
      }
      case 8:
        return static_cast<double>(next() % 1000) + 0.5;
      case 9:
        return static_cast<double>(static_cast<float>(next() % 1000) / 997.0f);
      default:
        return static_cast<double>(static_cast<std::int64_t>(next() % 201) - 100);
    }
  }

  v1::Value value(int depth) {
    v1::Value v;
    switch (below(depth > 6 ? 5 : 8)) {
      case 0:
        v.set_text(text());
        break;
      case 1:
        v.set_number(number());
        break;
      case 2:
        v.set_boolean(chance(50));
        break;
      case 3:
        v.set_null_value(true);
        break;
      case 4:
        break;  // unset
      case 5:
      case 6: {
        auto* list = v.mutable_list();
        const std::size_t n = below(5);
        for (std::size_t i = 0; i < n; ++i) *list->add_items() = value(depth + 1);
        break;
      }
      default: {
        auto* obj = v.mutable_object();
        const std::size_t n = below(5);
        static const char* keys[] = {"a", "b", "city", "zip", "k\"ey", "\xc3", "tags"};
        for (std::size_t i = 0; i < n; ++i) {
          auto* f = obj->add_fields();
          f->set_key(chance(70) ? std::string(keys[below(std::size(keys))])
                                : text(3));  // repeats too
          *f->mutable_value() = value(depth + 1);
        }
      }
    }
    return v;
  }

  v1::VarType var_type() {
    static const v1::VarType types[] = {
        v1::VAR_TYPE_UNSPECIFIED, v1::VAR_TEXT,  v1::VAR_NUMBER, v1::VAR_BOOLEAN, v1::VAR_DATE,
        v1::VAR_DATETIME,         v1::VAR_MONEY, v1::VAR_LIST,   v1::VAR_OBJECT};
    return types[below(std::size(types))];
  }

  reply make_reply() {
    reply r;
    r.session_id = id();
    r.sequence_id = chance(90) ? static_cast<std::int64_t>(below(1000))
                               : static_cast<std::int64_t>(next());  // any, even negative
    r.bot_version = chance(80) ? ascii_id() + "@" + ascii_id() : text(4);
    const std::size_t ids = below(4);
    for (std::size_t i = 0; i < ids; ++i)
      r.processed_sequence_ids.push_back(
          chance(20) ? (chance(50) ? std::numeric_limits<std::int64_t>::min()
                                   : std::numeric_limits<std::int64_t>::max())
                     : static_cast<std::int64_t>(below(100000)));
    r.request_id = chance(80) ? ascii_id() : text(4);
    if (chance(20)) r.runtime_crc = chance(50) ? ascii_id() : text(3);
    if (chance(30)) r.base_url = chance(50) ? "https://bots.example.com" : text(3);
    if (chance(30)) r.currency = chance(50) ? "EUR" : text(2);
    r.options.variables = chance(40);
    r.options.only_changed = chance(30);
    r.options.metrics = chance(30);
    r.options.intents = chance(40);
    r.options.entities = chance(40);
    const std::size_t vars = below(6);
    for (std::size_t i = 0; i < vars; ++i)
      r.variables.push_back(variable_out{chance(80) ? ascii_id() : text(3), var_type(), value(0)});
    return r;
  }

  v1::TurnResult make_turn() {
    v1::TurnResult t;
    static const v1::Status statuses[] = {v1::AWAITING_INPUT, v1::AWAITING_ACTION, v1::TRANSFERRED,
                                          v1::ENDED};
    t.mutable_state()->set_status(statuses[below(std::size(statuses))]);
    static const v1::EndReason reasons[] = {v1::END_REASON_UNSPECIFIED, v1::COMPLETED,
                                            v1::INFINITE_LOOP_DETECTED, v1::ERROR,
                                            v1::PROGRAM_MISMATCH};
    t.set_end_reason(reasons[below(std::size(reasons))]);
    const std::size_t messages = below(5);
    for (std::size_t i = 0; i < messages; ++i) {
      auto* m = t.add_messages();
      if (chance(85)) m->set_text(text());
      const std::size_t choices = chance(40) ? below(4) : 0;
      for (std::size_t c = 0; c < choices; ++c) {
        auto* choice = m->add_choices();
        choice->set_label(text(4));
        if (chance(70)) choice->set_payload(text(3));
      }
    }
    if (chance(50)) t.mutable_transfer()->set_queue(chance(50) ? "support" : text(3));
    static const char* prefixes[] = {
        "bot:", "flow:", "queue:", "skill:", "BOT:", "Skill:", "", "bot", "flow", "x:"};
    const std::size_t targets = below(4);
    for (std::size_t i = 0; i < targets; ++i)
      t.mutable_transfer()->add_targets(std::string(prefixes[below(std::size(prefixes))]) +
                                        (chance(70) ? ascii_id() : text(2)));
    static const char* matched[] = {"", "exact", "menu", "classifier", "EXACT"};
    t.set_matched_by(matched[below(std::size(matched))]);
    const std::size_t intents = below(3);
    for (std::size_t i = 0; i < intents; ++i) {
      auto* in = t.add_intents();
      in->set_name(chance(80) ? ascii_id() : text(3));
      const double d = number();
      in->set_confidence(std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max()
                             ? (d > 0 ? 1 : -1) * std::numeric_limits<float>::infinity()
                             : static_cast<float>(d));
    }
    const std::size_t entities = below(3);
    for (std::size_t i = 0; i < entities; ++i) {
      auto* e = t.add_entities();
      e->set_entity(chance(80) ? ascii_id() : text(3));
      e->set_value(text(4));
    }
    return t;
  }

 private:
  std::mt19937_64 rng_;
};

void expect_all_renders_match(const reply& r, const v1::TurnResult& t, const std::string& what) {
  expect_same(render_start(r, t), reference::render_start(r, t), "start " + what);
  expect_same(render_continue(r, t), reference::render_continue(r, t), "continue " + what);
  expect_same(render_end(r), reference::render_end(r), "end " + what);
}

// ------------------------------------------------------------------ hand-picked cases

reply typical_reply() {
  reply r;
  r.session_id = "57904eb6-5352-4c5e-adf6-5f100572cf5d";
  r.sequence_id = 3;
  r.bot_version = "order-status@0123456789abcdef";
  r.processed_sequence_ids = {3};
  r.request_id = "36a73651-a46d-4d16-9a8a-fd436ed62e1a";
  return r;
}

TEST(BotApiRenderEquivalence, TypicalTurnsAndGoldenBody) {
  auto r = typical_reply();
  v1::TurnResult t;
  t.mutable_state()->set_status(v1::AWAITING_INPUT);
  t.add_messages()->set_text("Your order shipped.");
  auto* m = t.add_messages();
  m->set_text("Anything else?");
  auto* c = m->add_choices();
  c->set_label("Yes");
  c->set_payload("more");
  m->add_choices()->set_label("No");
  expect_all_renders_match(r, t, "typical");
  // Golden: the exact text, independent of the reference.
  const std::string id0 = message_id(r.session_id, 3, 0), id1 = message_id(r.session_id, 3, 1),
                    id2 = message_id(r.session_id, 3, 2);
  EXPECT_EQ(
      render_continue(r, t).body,
      R"({"botVersion":"order-status@0123456789abcdef","processedSequenceIds":[3],"messages":[)"
      R"({"type":"text","id":")" +
          id0 +
          R"(","text":"Your order shipped."},)"
          R"({"type":"text","id":")" +
          id1 +
          R"(","text":"Anything else?"},)"
          R"({"type":"choices","id":")" +
          id2 +
          R"(","choices":[{"label":"Yes","alias":"1","id":"more"},)"
          R"({"label":"No","alias":"2","id":"No"}],"widget":"buttons"}],)"
          R"("_links":{"self":{"href":"/v5.3.0/sessions/57904eb6-5352-4c5e-adf6-5f100572cf5d"},)"
          R"("messages":{"href":"/v5.3.0/sessions/57904eb6-5352-4c5e-adf6-5f100572cf5d/messages"},)"
          R"("session":{"href":"/v5.3.0/sessions/57904eb6-5352-4c5e-adf6-5f100572cf5d"}}})");
  EXPECT_EQ(render_error(404, "path: no such resource '/x\"y'", "/x\"y", "rid", 1531245973799).body,
            R"({"status":404,"path":"/x\"y","requestId":"rid","error":"NotFoundError",)"
            R"("message":"path: no such resource '/x\"y'","timestamp":1531245973799})");
}

TEST(BotApiRenderEquivalence, EscapingOfEveryKindOfText) {
  // Each string is rendered as a message text and as an error message.
  const std::vector<std::string> texts = {
      "",
      "plain",
      "quote \" backslash \\ slash /",
      std::string("nul \0 inside", 12),
      "\b\f\n\r\t\x01\x02\x1f\x7f",
      "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
      "\xe4\xbd\xa0\xe5\xa5\xbd",
      "caf\xc3",
      "\xc3",
      "\xe2\x82",
      "\xf0\x9f\x98",
      "\x80\x80",
      "\xff\xfe",
      "\xc0\xaf",
      "\xe0\x80\x80",
      "\xed\xa0\x80\xed\xb0\x80",
      "\xf4\x90\x80\x80",
      "\xf5",
      "a\xe2\x82z",
      "\xe2\x82\xe2\x82\xac",
      "\xf0\x9f\x98\xf0\x9f\x98\x80",
      "\xc3\"",
      "\xe2\\",
      "\xf0\n",
      "\\u0041",
      "</script>",
      "\xef\xbb\xbf"
      "bom",
      std::string(600, '"'),
      std::string(300, '\xc3') + "\xa9",
      std::string(1000, 'x') + "\xe2",
  };
  auto r = typical_reply();
  for (const auto& s : texts) {
    SCOPED_TRACE(::testing::PrintToString(s));
    v1::TurnResult t;
    t.mutable_state()->set_status(v1::AWAITING_INPUT);
    t.add_messages()->set_text(s);
    auto* m = t.add_messages();
    m->set_text(s);
    auto* c = m->add_choices();
    c->set_label(s);
    c->set_payload(s);
    reply odd = r;
    odd.session_id = s;
    odd.bot_version = s;
    odd.base_url = s;
    expect_all_renders_match(r, t, "text");
    expect_all_renders_match(odd, t, "everywhere");
    expect_same(render_error(400, s, s, s, -1),
                reference::render_error(400, s, s, s, -1, std::nullopt), "error");
    if (HasFatalFailure()) return;
  }
}

TEST(BotApiRenderEquivalence, EveryVariableTypeAndTheDepthLimit) {
  auto r = typical_reply();
  r.options.variables = r.options.metrics = r.options.intents = r.options.entities = true;
  // Lists and objects nested past max_json_depth (32) in every variable type.
  v1::Value deep;
  deep.set_text("bottom \"\xc3");
  for (int i = 0; i < 40; ++i) {
    v1::Value outer;
    if (i % 3 == 0) {
      *outer.mutable_list()->add_items() = deep;
    } else {
      // A repeated key keeps its first place and takes its last value.
      auto* f = outer.mutable_object()->add_fields();
      f->set_key("k");
      f->mutable_value()->set_number(i + 0.5);
      f = outer.mutable_object()->add_fields();
      f->set_key(i % 2 ? "z" : "");
      f->mutable_value()->set_text("x");
      f = outer.mutable_object()->add_fields();
      f->set_key("k");
      *f->mutable_value() = deep;
    }
    deep = std::move(outer);
  }
  for (v1::VarType type :
       {v1::VAR_TYPE_UNSPECIFIED, v1::VAR_TEXT, v1::VAR_NUMBER, v1::VAR_BOOLEAN, v1::VAR_DATE,
        v1::VAR_DATETIME, v1::VAR_MONEY, v1::VAR_LIST, v1::VAR_OBJECT}) {
    r.variables.push_back(variable_out{"deep", type, deep});
    v1::Value money;
    money.set_number(10.4);
    r.variables.push_back(variable_out{"amount", type, money});
    money.set_number(-0.005);
    r.variables.push_back(variable_out{"tiny", type, money});
    money.set_number(1e300);
    r.variables.push_back(variable_out{"huge", type, money});
  }
  v1::TurnResult t;
  t.mutable_state()->set_status(v1::ENDED);
  t.set_end_reason(v1::COMPLETED);
  t.add_messages()->set_text("bye");
  for (const char* currency : {"", "EUR", "\xc3"}) {
    r.currency = currency;
    expect_all_renders_match(r, t, currency);
  }
}

TEST(BotApiRenderEquivalence, StatusAndVersions) {
  expect_same(render_status(true), reference::render_status(true), "up");
  expect_same(render_status(false), reference::render_status(false), "down");
  expect_same(render_versions(), reference::render_versions(), "versions");
}

// ------------------------------------------------------------------ random cases

TEST(BotApiRenderEquivalence, RandomRepliesAndTurns) {
  generator g(20261126);
  for (int i = 0; i < 3000; ++i) {
    const reply r = g.make_reply();
    const v1::TurnResult t = g.make_turn();
    expect_all_renders_match(r, t, "case " + std::to_string(i));
    if (HasFatalFailure()) return;
  }
}

TEST(BotApiRenderEquivalence, RandomErrorsAndFailures) {
  generator g(42);
  for (int i = 0; i < 5000; ++i) {
    const int statuses[] = {400, 401, 403, 404, 405, 422, 423, 429, 500, 503, 502};
    const int status = statuses[g.below(std::size(statuses))];
    const std::string message = g.text(), path = g.text(4), rid = g.id();
    const auto ts = static_cast<std::int64_t>(g.next());
    std::optional<std::int64_t> retry;
    if (g.chance(30)) retry = static_cast<std::int64_t>(g.next() % 7) - 2;
    expect_same(render_error(status, message, path, rid, ts, retry),
                reference::render_error(status, message, path, rid, ts, retry),
                "error " + std::to_string(i));

    http::request req;
    req.path = path;
    if (g.chance(50)) req.request_id = g.id();
    if (g.chance(50)) req.headers.emplace_back("X-Request-ID", g.id());
    const failure f = make_failure(status, message);
    expect_same(render_failure(f, req, ts), reference::render_failure(f, req, ts),
                "failure " + std::to_string(i));
    if (HasFatalFailure()) return;
  }
}

TEST(BotApiRenderEquivalence, RandomBytesEscapeLikeNlohmann) {
  generator g(7);
  for (int i = 0; i < 20000; ++i) {
    std::string s(g.below(48), '\0');
    for (auto& c : s) {
      // Mostly high bytes and control characters: the interesting ones.
      const auto b = g.next();
      c = static_cast<char>((b & 0x300) ? (0x80 | (b & 0x7f)) : (b & 0xff));
    }
    expect_same(render_error(400, s, "/p", "r", 0),
                reference::render_error(400, s, "/p", "r", 0, std::nullopt),
                ::testing::PrintToString(s));
    if (HasFatalFailure()) return;
  }
}

TEST(BotApiRenderEquivalence, MessageIds) {
  generator g(99);
  for (int i = 0; i < 5000; ++i) {
    const std::string session = g.chance(50) ? g.ascii_id() : g.text(5);
    const auto seq = g.chance(50) ? static_cast<std::int64_t>(g.below(1000))
                                  : static_cast<std::int64_t>(g.next());
    const std::size_t index = g.chance(10) ? end_message_index : g.below(20);
    ASSERT_EQ(message_id(session, seq, index), reference::message_id(session, seq, index));
  }
  ASSERT_EQ(message_id("", std::numeric_limits<std::int64_t>::min(), 0),
            reference::message_id("", std::numeric_limits<std::int64_t>::min(), 0));
}

}  // namespace
}  // namespace parley::channels::botapi
