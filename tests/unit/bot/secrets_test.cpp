// {{secret.NAME}} in action requests: only the placeholders the bot file wrote
// are resolved (issue 13, "Tenant secrets"); text from variables stays literal.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "src/bot/bot.hpp"
#include "tests/unit/bot/build_program.hpp"

namespace bot = parley::bot;
namespace v1 = parley::bot::v1;

namespace {

constexpr std::int64_t now = 1795651200;

std::shared_ptr<const bot::program> build(const std::string& text) {
  return bot::testing::build(text, "secrets.yaml");
}

/// A lookup over a fixed table that records every name it was asked for.
struct vault {
  std::map<std::string, std::string, std::less<>> values;
  std::vector<std::string> asked;
  std::function<std::optional<std::string>(std::string_view)> lookup() {
    return [this](std::string_view n) -> std::optional<std::string> {
      asked.emplace_back(n);
      auto it = values.find(n);
      if (it == values.end()) return std::nullopt;
      return it->second;
    };
  }
};

// `who` is set by the client, `note` is what the user typed.
const char* const relay = R"BOT(bot:
  name: relay
  welcome: ask
variables:
  who: {type: text, default: nobody, client_settable: true}
  note: text
dialogs:
  ask:
    - question: {prompt: "Your note?", entity: text, into: note}
    - action:
        name: relay
        url: "https://api.example/{{who}}/{{note}}?key={{secret.KEY}}"
        headers:
          X-Mixed: "{{who}} {{secret.KEY}} {{note}}"
          X-User: "{{note}}"
          X-Key: "{{ secret.KEY }}"
    - message: "done"
)BOT";

/// Runs `relay` up to its action with the client variable and the user's text.
v1::ActionRequest relay_request(const bot::program& p, const std::string& who,
                                const std::string& note) {
  bot::variables vars;
  vars["who"].set_text(who);
  auto r = bot::start(p, vars, now);
  r = bot::resume(p, r.state(), bot::text_input(note, now));
  EXPECT_EQ(r.state().status(), v1::AWAITING_ACTION) << r.error();
  return r.action();
}

}  // namespace

TEST(secrets, text_from_variables_stays_literal_and_the_bots_own_placeholders_resolve) {
  auto p = build(relay);
  ASSERT_TRUE(p);
  auto req = relay_request(*p, "{{secret.OTHER_TENANT_TOKEN}}", "{{secret.KEY}} please");
  // The rendered request (what transcripts and parleyctl show) holds
  // placeholders only.
  EXPECT_EQ(req.url(),
            "https://api.example/{{secret.OTHER_TENANT_TOKEN}}/{{secret.KEY}} please"
            "?key={{secret.KEY}}");
  ASSERT_EQ(req.headers_size(), 3);
  EXPECT_EQ(req.headers(0).value(),
            "{{secret.OTHER_TENANT_TOKEN}} {{secret.KEY}} {{secret.KEY}} please");
  ASSERT_EQ(req.secrets_size(), 3) << "one in the url, one in X-Mixed, one in X-Key";

  vault v;
  v.values = {{"KEY", "k3y"}, {"OTHER_TENANT_TOKEN", "LEAKED"}};
  auto resolved = bot::resolve_secrets(req, v.lookup());
  ASSERT_TRUE(resolved.ok()) << resolved.err().message;
  EXPECT_EQ(resolved->url(),
            "https://api.example/{{secret.OTHER_TENANT_TOKEN}}/{{secret.KEY}} please?key=k3y");
  EXPECT_EQ(resolved->headers(0).name(), "X-Mixed");
  EXPECT_EQ(resolved->headers(0).value(),
            "{{secret.OTHER_TENANT_TOKEN}} k3y {{secret.KEY}} please");
  EXPECT_EQ(resolved->headers(1).value(), "{{secret.KEY}} please");
  EXPECT_EQ(resolved->headers(2).value(), "k3y");
  EXPECT_EQ(resolved->secrets_size(), 0) << "a resolved request has no references left";
  EXPECT_EQ(v.asked, (std::vector<std::string>{"KEY", "KEY", "KEY"}))
      << "a name from rendered text is never even looked up";

  // Resolving the result again changes nothing: the user's placeholder never expands.
  auto again = bot::resolve_secrets(*resolved, v.lookup());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->SerializeAsString(), resolved->SerializeAsString());
}

TEST(secrets, a_missing_secret_fails_naming_it) {
  auto p = build(relay);
  ASSERT_TRUE(p);
  auto req = relay_request(*p, "{{secret.NOT_THERE_EITHER}}", "hello");
  vault v;  // empty: KEY is missing
  auto resolved = bot::resolve_secrets(req, v.lookup());
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.err().code, "missing_secret");
  EXPECT_NE(resolved.err().message.find("'KEY'"), std::string::npos) << resolved.err().message;
  EXPECT_EQ(v.asked, std::vector<std::string>{"KEY"}) << "it stops at the first missing one";
}

TEST(secrets, several_secrets_in_one_value_between_multibyte_text) {
  const char* text = R"BOT(bot:
  name: multi
  welcome: go
variables:
  city: {type: text, default: "", client_settable: true}
dialogs:
  go:
    - action:
        name: multi
        url: "https://api.example/é/{{secret.A}}{{secret.B}}/{{city}}/ü{{secret.A}}"
        headers:
          X-Pair: "日本{{secret.B}}—{{city}}—{{secret.A}}語"
)BOT";
  auto p = build(text);
  ASSERT_TRUE(p);
  bot::variables vars;
  vars["city"].set_text("Zürich {{secret.A}} ☃");
  auto r = bot::start(*p, vars, now);
  ASSERT_EQ(r.state().status(), v1::AWAITING_ACTION) << r.error();
  const auto& req = r.action();
  ASSERT_EQ(req.secrets_size(), 5);
  // Byte offsets, not characters: "https://api.example/é/" is 23 bytes.
  EXPECT_EQ(req.secrets(0).field(), v1::SecretRef::URL);
  EXPECT_EQ(req.secrets(0).offset(), 23u);
  EXPECT_EQ(req.secrets(0).name(), "A");
  EXPECT_EQ(req.secrets(1).offset(), 23u + 12u);
  EXPECT_EQ(req.secrets(1).name(), "B");
  EXPECT_EQ(req.secrets(3).field(), v1::SecretRef::HEADER);
  EXPECT_EQ(req.secrets(3).header(), 0);
  EXPECT_EQ(req.secrets(3).offset(), 6u) << "after the 6 bytes of 日本";

  vault v;
  v.values = {{"A", "αα"}, {"B", "b"}};
  auto resolved = bot::resolve_secrets(req, v.lookup());
  ASSERT_TRUE(resolved.ok()) << resolved.err().message;
  EXPECT_EQ(resolved->url(), "https://api.example/é/ααb/Zürich {{secret.A}} ☃/üαα");
  EXPECT_EQ(resolved->headers(0).value(), "日本b—Zürich {{secret.A}} ☃—αα語");
}

TEST(secrets, a_request_without_references_resolves_nothing) {
  // An ActionRequest from before SecretRef existed carries its placeholders
  // only as text. Documented choice: nothing in it is resolved, so a
  // placeholder that came from a variable can never expand.
  v1::ActionRequest old;
  old.set_name("legacy");
  old.set_method("GET");
  old.set_url("https://api.example/?k={{secret.KEY}}");
  auto* h = old.add_headers();
  h->set_name("Authorization");
  h->set_value("Bearer {{secret.KEY}}");
  vault v;
  v.values = {{"KEY", "k3y"}};
  auto resolved = bot::resolve_secrets(old, v.lookup());
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->url(), "https://api.example/?k={{secret.KEY}}");
  EXPECT_EQ(resolved->headers(0).value(), "Bearer {{secret.KEY}}");
  EXPECT_TRUE(v.asked.empty());
}

TEST(secrets, a_reference_that_does_not_point_at_its_placeholder_fails) {
  v1::ActionRequest req;
  req.set_name("forged");
  req.set_url("https://api.example/?k={{secret.KEY}}");
  auto* h = req.add_headers();
  h->set_name("X-Key");
  h->set_value("{{secret.KEY}}");
  vault v;
  v.values = {{"KEY", "k3y"}};
  auto expect_bad = [&](v1::SecretRef::Field field, int header, std::uint32_t offset,
                        const char* name) {
    auto r = req;
    auto* ref = r.add_secrets();
    ref->set_field(field);
    ref->set_header(header);
    ref->set_offset(offset);
    ref->set_name(name);
    auto res = bot::resolve_secrets(r, v.lookup());
    ASSERT_FALSE(res.ok()) << field << " " << header << " " << offset << " " << name;
    EXPECT_EQ(res.err().code, "bad_secret_ref");
    EXPECT_EQ(res.err().message.find("k3y"), std::string::npos);
  };
  expect_bad(v1::SecretRef::URL, 0, 22, "KEY");  // one byte early
  expect_bad(v1::SecretRef::URL, 0, 23, "KE");   // another name
  expect_bad(v1::SecretRef::URL, 0, 1000, "KEY");
  expect_bad(v1::SecretRef::HEADER, 1, 0, "KEY");  // no such header
  expect_bad(v1::SecretRef::FIELD_UNSPECIFIED, 0, 0, "KEY");
  EXPECT_TRUE(v.asked.empty()) << "nothing is looked up for a bad reference";

  // Two references to the same placeholder overlap.
  auto r = req;
  for (int i = 0; i < 2; ++i) {
    auto* ref = r.add_secrets();
    ref->set_field(v1::SecretRef::HEADER);
    ref->set_offset(0);
    ref->set_name("KEY");
  }
  auto res = bot::resolve_secrets(r, v.lookup());
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.err().code, "bad_secret_ref");
}

TEST(secrets, the_compiler_allows_secrets_only_in_an_action_url_and_headers) {
  const char* text = R"BOT(bot:
  name: where
  welcome: go
variables:
  v: text
dialogs:
  go:
    - message: "Your token is {{secret.TOKEN}}"
    - question: {prompt: "Name {{secret.A}}?", reprompt: "Again {{secret.B}}", entity: text, into: v}
    - menu: {prompt: "Pick {{secret.C}}", options: [One, Two]}
    - action:
        name: ok
        url: "https://api.example/{{secret.}}"
        headers: {X-Bad: "{{secret.has space}}", X-Good: "{{secret.A_b-1.c}}"}
    - end: "Bye {{secret.D}}"
)BOT";
  auto r = bot::compile(text, "where.yaml");
  EXPECT_FALSE(r.ok());
  auto count = [&](int line, const std::string& part) {
    int n = 0;
    for (const auto& d : r.diagnostics)
      if (d.line == line && d.message.find(part) != std::string::npos) ++n;
    return n;
  };
  std::string all;
  for (const auto& d : r.diagnostics) all += d.to_string() + "\n";
  const std::string where = "only allowed in an action's url and headers";
  EXPECT_EQ(count(8, where), 1) << all;
  EXPECT_EQ(count(9, where), 2) << all;
  EXPECT_EQ(count(10, where), 1) << all;
  EXPECT_EQ(count(15, where), 1) << all;
  EXPECT_EQ(count(13, "a secret needs a name"), 1) << all;
  EXPECT_EQ(count(14, "bad secret name 'has space'"), 1) << all;
  EXPECT_EQ(count(14, "A_b-1.c"), 0) << all;
  EXPECT_EQ(r.error_count(), 7) << all;
}
