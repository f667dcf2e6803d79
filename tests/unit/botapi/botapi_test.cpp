// Bot API codec: routing, parsing (every message type and every error, each
// naming its field), rendering validated against the contract, round trips.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "tests/unit/botapi/botapi_support.hpp"

namespace parley::channels::botapi {
namespace {

using json = nlohmann::json;
using namespace testing;

constexpr const char* start_url = "/v5.3.0/bots/order-status/sessions";
constexpr const char* messages_url = "/v5.3.0/sessions/s-1/messages";
constexpr const char* session_url = "/v5.3.0/sessions/s-1";

// ------------------------------------------------------------------ routing

TEST(BotApiRoute, MatchesEveryEndpoint) {
  auto r = match_route("POST", start_url);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, endpoint::start_session);
  EXPECT_EQ(r->id, "order-status");
  r = match_route("POST", messages_url);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, endpoint::continue_session);
  EXPECT_EQ(r->id, "s-1");
  r = match_route("DELETE", session_url);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, endpoint::end_session);
  EXPECT_EQ(r->id, "s-1");
  r = match_route("GET", "/status");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, endpoint::status);
  r = match_route("GET", "/versions");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, endpoint::versions);
}

TEST(BotApiRoute, TheOrgOfARequestIsReadBeforeParsing) {
  http::request req;
  EXPECT_EQ(org_of(req), "") << "no header";
  req.headers = {{"x-org-id", "  acme.eu:1  "}};
  EXPECT_EQ(org_of(req), "acme.eu:1") << "case-insensitive name, trimmed value";
  req.headers = {{"X-Org-Id", "bad org"}};
  EXPECT_EQ(org_of(req), "") << "an id the API refuses names no org";
  req.headers = {{"X-Org-Id", std::string(129, 'a')}};
  EXPECT_EQ(org_of(req), "");
}

TEST(BotApiRoute, UnknownPathsAre404AndWrongMethods405) {
  for (const char* p :
       {"/", "", "/v5.2.0/sessions/s-1", "/v5.3.0/sessions", "/v5.3.0/sessions/s-1/",
        "/v5.3.0/sessions//messages", "/v5.3.0/bots/a b/sessions",
        "/v5.3.0/sessions/s-1/messages/x", "/statusx", "/v5.3.0/bots/x/sessions/y"}) {
    auto r = match_route("POST", p);
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_EQ(r.err().status, 404) << p;
    EXPECT_EQ(r.err().error, "NotFoundError");
  }
  EXPECT_EQ(match_route("POST", std::string(200, 'a')).err().status, 404);
  EXPECT_EQ(match_route("POST", "/v5.3.0/sessions/" + std::string(129, 'a')).err().status, 404);
  for (auto [m, p] : std::vector<std::pair<const char*, const char*>>{{"GET", start_url},
                                                                      {"DELETE", messages_url},
                                                                      {"POST", session_url},
                                                                      {"POST", "/status"},
                                                                      {"PUT", "/versions"}}) {
    auto r = match_route(m, p);
    ASSERT_FALSE(r.ok()) << m << " " << p;
    EXPECT_EQ(r.err().status, 405) << m << " " << p;
  }
}

// ------------------------------------------------------------------ start

json full_start_body() {
  return json::parse(R"({
    "externalSessionKey": "57904eb6-5352-4c5e-adf6-5f100572cf5d",
    "message": {"text": "Hello"},
    "forceConfig": {"endpoint": "https://example.my.salesforce.com/"},
    "responseOptions": {
      "variables": {"include": true, "filter": ["OrderQty", "OrderType"], "onlyChanged": true},
      "metrics": true, "intents": true, "entities": false
    },
    "tz": "America/Los_Angeles",
    "variables": [
      {"name": "isShipped", "type": "boolean", "value": true},
      {"name": "orderDate", "type": "date", "value": "2021-09-21"},
      {"name": "orderDateTime", "type": "dateTime", "value": "2018-09-21T14:30:00"},
      {"name": "orderAmount", "type": "money", "value": "USD 10.40"},
      {"name": "qty", "type": "number", "value": 10},
      {"name": "note", "type": "text", "value": "Thanks for your order!"},
      {"name": "contact", "type": "object", "value": [
        {"name": "fullName", "type": "text", "value": "Matt Smith"},
        {"name": "age", "type": "number", "value": 41}]},
      {"name": "target", "type": "ref", "value": "1M5xx000000000BCAQ"},
      {"name": "targets", "type": "list", "value": [{"type": "ref", "value": "1M5xx000000000BCAQ"},
                                                    {"other": 1}]},
      {"name": "unset", "type": "text", "value": null}
    ],
    "referrers": [{"type": "Salesforce:Core:Bot:Id", "value": "0Xx000"}]
  })");
}

TEST(BotApiStart, TestBodyConformsToTheContract) {
  auto v = contract().validate_request(start_path, "POST", full_start_body());
  EXPECT_TRUE(v.empty()) << test::to_string(v);
}

TEST(BotApiStart, ParsesEveryField) {
  auto r = parse_start(make_request("POST", start_url, full_start_body().dump()));
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->ctx.org_id, "demo");
  EXPECT_EQ(r->ctx.bearer_token, "key-123");
  EXPECT_EQ(r->ctx.request_id, "36a73651-a46d-4d16-9a8a-fd436ed62e1a");
  EXPECT_EQ(r->bot_id, "order-status");
  EXPECT_EQ(r->external_session_key, "57904eb6-5352-4c5e-adf6-5f100572cf5d");
  EXPECT_EQ(r->endpoint, "https://example.my.salesforce.com/");
  ASSERT_TRUE(r->text.has_value());
  EXPECT_EQ(*r->text, "Hello");
  EXPECT_EQ(r->tz.value_or(""), "America/Los_Angeles");
  EXPECT_TRUE(r->options.variables);
  EXPECT_TRUE(r->options.only_changed);
  EXPECT_EQ(r->options.filter, (std::vector<std::string>{"OrderQty", "OrderType"}));
  EXPECT_TRUE(r->options.metrics);
  EXPECT_TRUE(r->options.intents);
  EXPECT_FALSE(r->options.entities);
  ASSERT_EQ(r->referrers.size(), 1u);
  EXPECT_EQ(r->referrers[0].type, "Salesforce:Core:Bot:Id");
  EXPECT_EQ(r->referrers[0].value, "0Xx000");

  ASSERT_EQ(r->variables.size(), 10u);
  auto vars = r->bot_variables();
  EXPECT_TRUE(vars["isShipped"].boolean());
  EXPECT_EQ(vars["orderDate"].text(), "2021-09-21");
  EXPECT_EQ(vars["orderDateTime"].text(), "2018-09-21T14:30:00");
  EXPECT_DOUBLE_EQ(vars["orderAmount"].number(), 10.40);
  EXPECT_DOUBLE_EQ(vars["qty"].number(), 10);
  EXPECT_EQ(vars["note"].text(), "Thanks for your order!");
  const auto& contact = vars["contact"].object();
  ASSERT_EQ(contact.fields_size(), 2);
  EXPECT_EQ(contact.fields(0).key(), "age");  // sorted by key
  EXPECT_DOUBLE_EQ(contact.fields(0).value().number(), 41);
  EXPECT_EQ(contact.fields(1).key(), "fullName");
  EXPECT_EQ(contact.fields(1).value().text(), "Matt Smith");
  EXPECT_EQ(vars["target"].text(), "1M5xx000000000BCAQ");
  const auto& targets = vars["targets"].list();
  ASSERT_EQ(targets.items_size(), 2);
  EXPECT_EQ(targets.items(0).text(), "1M5xx000000000BCAQ");
  ASSERT_EQ(targets.items(1).kind_case(), v1::Value::kObject);
  EXPECT_EQ(targets.items(1).object().fields(0).key(), "other");
  EXPECT_TRUE(vars["unset"].null_value());
  EXPECT_EQ(r->variables[3].type, "money");
}

TEST(BotApiStart, MinimalBody) {
  auto r = parse_start(make_request(
      "POST", start_url, R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"}})"));
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_FALSE(r->text.has_value());
  EXPECT_FALSE(r->tz.has_value());
  EXPECT_TRUE(r->variables.empty());
  EXPECT_FALSE(r->options.variables);
  EXPECT_FALSE(r->options.intents);
}

TEST(BotApiStart, NullablesAndUnknownFieldsAreAccepted) {
  auto r = parse_start(make_request("POST", start_url, R"({
      "externalSessionKey":"k","forceConfig":{"endpoint":"e"},"message":{"text":null},
      "tz":null,"variables":null,"referrers":null,"responseOptions":null,
      "richContentCapabilities":{"messageTypes":[]}})"));
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_FALSE(r->text.has_value());
}

TEST(BotApiStart, MoneyAcceptsABareAmountAndANumber) {
  auto r = parse_start(make_request("POST", start_url, R"({
      "externalSessionKey":"k","forceConfig":{"endpoint":"e"},"variables":[
        {"name":"a","type":"money","value":"12.5"},{"name":"b","type":"money","value":7},
        {"name":"c","type":"dateTime","value":"2018-09-21T14:30:00.250Z"}]})"));
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_DOUBLE_EQ(r->variables[0].value.number(), 12.5);
  EXPECT_DOUBLE_EQ(r->variables[1].value.number(), 7);
  EXPECT_EQ(r->variables[2].value.text(), "2018-09-21T14:30:00.250Z");
}

struct bad_case {
  const char* body;
  const char* message;  // expected message prefix: the field and the complaint
};

void expect_bad_start(const bad_case& c) {
  SCOPED_TRACE(c.body);
  auto r = parse_start(make_request("POST", start_url, c.body));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().status, 400);
  EXPECT_EQ(r.err().error, "BadRequestError");
  EXPECT_EQ(r.err().message.rfind(c.message, 0), 0u) << "got: " << r.err().message;
}

TEST(BotApiStart, EveryBadFieldIsNamed) {
  const std::string ok = R"("externalSessionKey":"k","forceConfig":{"endpoint":"e"})";
  auto with = [&](const std::string& extra) { return "{" + ok + "," + extra + "}"; };
  auto var = [&](const std::string& v) { return with(R"("variables":[)" + v + "]"); };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "body: required JSON object"},
      {"   ", "body: required JSON object"},
      {"{", "body: malformed JSON"},
      {"{\"a\":1}garbage", "body: malformed JSON"},
      {"[]", "body: must be a JSON object"},
      {"\"text\"", "body: must be a JSON object"},
      {std::string(40, '[') + std::string(40, ']'), "body: JSON nested deeper than 32 levels"},
      {R"({"forceConfig":{"endpoint":"e"}})", "externalSessionKey: required string"},
      {R"({"externalSessionKey":5,"forceConfig":{"endpoint":"e"}})",
       "externalSessionKey: required string"},
      {R"({"externalSessionKey":"","forceConfig":{"endpoint":"e"}})",
       "externalSessionKey: must not be empty"},
      {R"({"externalSessionKey":"k"})", "forceConfig: required object"},
      {R"({"externalSessionKey":"k","forceConfig":"e"})", "forceConfig: required object"},
      {R"({"externalSessionKey":"k","forceConfig":{}})", "forceConfig.endpoint: required string"},
      {R"({"externalSessionKey":"k","forceConfig":{"endpoint":1}})",
       "forceConfig.endpoint: required string"},
      {with(R"("message":"hi")"), "message: must be an object"},
      {with(R"("message":{"text":3})"), "message.text: must be a string"},
      {with(R"("tz":3)"), "tz: must be a string or null"},
      {with(R"("variables":{})"), "variables: must be an array"},
      {var("3"), "variables[0]: must be an object"},
      {var(R"({"type":"text","value":"x"})"), "variables[0].name: required string"},
      {var(R"({"name":"","type":"text","value":"x"})"), "variables[0].name: must not be empty"},
      {var(R"({"name":"a","value":"x"})"), "variables[0].type: required, one of"},
      {var(R"({"name":"a","type":"blob","value":"x"})"), "variables[0].type: required, one of"},
      {var(R"({"name":"a","type":"text"})"), "variables[0].value: required"},
      {var(R"({"name":"a","type":"text","value":"x"},{"name":"b","type":"boolean","value":"yes"})"),
       "variables[1].value: must be a boolean"},
      {var(R"({"name":"a","type":"number","value":"3"})"), "variables[0].value: must be a number"},
      {var(R"({"name":"a","type":"text","value":3})"), "variables[0].value: must be a string"},
      {var(R"({"name":"a","type":"ref","value":true})"), "variables[0].value: must be a string"},
      {var(R"({"name":"a","type":"date","value":"21/09/2021"})"),
       "variables[0].value: must be a date"},
      {var(R"({"name":"a","type":"date","value":5})"), "variables[0].value: must be a date"},
      {var(R"({"name":"a","type":"dateTime","value":"2018-09-21"})"),
       "variables[0].value: must be a date-time"},
      {var(R"({"name":"a","type":"money","value":"ten dollars"})"),
       "variables[0].value: must be money"},
      {var(R"({"name":"a","type":"money","value":"USD"})"), "variables[0].value: must be money"},
      {var(R"({"name":"a","type":"object","value":{"x":1}})"),
       "variables[0].value: must be an array of variables"},
      {var(R"({"name":"a","type":"object","value":[{"name":"x","type":"number","value":"1"}]})"),
       "variables[0].value[0].value: must be a number"},
      {var(R"({"name":"a","type":"list","value":{}})"), "variables[0].value: must be an array"},
      {var(R"({"name":"a","type":"list","value":[{"type":"number","value":"x"}]})"),
       "variables[0].value[0].value: must be a number"},
      {with(R"("referrers":{})"), "referrers: must be an array"},
      {with(R"("referrers":[1])"), "referrers[0]: must be an object"},
      {with(R"("referrers":[{"type":"x","value":"v"}])"), "referrers[0].type: required, one of"},
      {with(R"("referrers":[{"type":"Salesforce:Core:Bot:Id"}])"),
       "referrers[0].value: required string"},
      {with(R"("responseOptions":[])"), "responseOptions: must be an object"},
      {with(R"("responseOptions":{"variables":true})"),
       "responseOptions.variables: must be an object"},
      {with(R"("responseOptions":{"variables":{"onlyChanged":true}})"),
       "responseOptions.variables.include: required boolean"},
      {with(R"("responseOptions":{"variables":{"include":true}})"),
       "responseOptions.variables.onlyChanged: required boolean"},
      {with(R"("responseOptions":{"variables":{"include":true,"onlyChanged":false,"filter":"a"}})"),
       "responseOptions.variables.filter: must be an array"},
      {with(
           R"("responseOptions":{"variables":{"include":true,"onlyChanged":false,"filter":["a",1]}})"),
       "responseOptions.variables.filter[1]: must be a string"},
      {with(R"("responseOptions":{"metrics":"yes"})"),
       "responseOptions.metrics: must be a boolean"},
      {with(R"("responseOptions":{"intents":1})"), "responseOptions.intents: must be a boolean"},
      {with(R"("responseOptions":{"entities":[]})"), "responseOptions.entities: must be a boolean"},
  };
  for (const auto& [body, message] : cases) expect_bad_start({body.c_str(), message.c_str()});
}

TEST(BotApiStart, InvalidUtf8IsMalformedJson) {
  expect_bad_start({"{\"externalSessionKey\":\"\xff\xfe\",\"forceConfig\":{\"endpoint\":\"e\"}}",
                    "body: malformed JSON"});
}

TEST(BotApiStart, HeadersAreCheckedBeforeTheBody) {
  struct header_case {
    http::header_list headers;
    int status;
    const char* message;
  };
  const std::vector<header_case> cases = {
      {{{"Authorization", ""}}, 401, "Authorization: bearer token required"},
      {{{"Authorization", "   "}}, 401, "Authorization: bearer token required"},
      {{{"Authorization", "Basic a2V5"}}, 401, "Authorization: must be 'Bearer <token>'"},
      {{{"Authorization", "Bearer"}}, 401, "Authorization: must be 'Bearer <token>'"},
      {{{"Authorization", "Bearer  "}}, 401, "Authorization: must be 'Bearer <token>'"},
      {{{"Authorization", "Bearerkey"}}, 401, "Authorization: must be 'Bearer <token>'"},
      {{{"Authorization", "Bearer a b"}}, 401, "Authorization: must be 'Bearer <token>'"},
      {{{"X-Org-Id", ""}}, 400, "X-Org-Id: required header"},
      {{{"X-Org-Id", "  "}}, 400, "X-Org-Id: required header"},
      {{{"X-Org-Id", "de mo"}}, 400, "X-Org-Id: must be"},
      {{{"X-Org-Id", std::string(129, 'a')}}, 400, "X-Org-Id: must be"},
  };
  for (const auto& c : cases) {
    auto r = parse_start(make_request("POST", start_url, "not json", c.headers));
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.err().status, c.status) << c.message;
    EXPECT_EQ(r.err().message.rfind(c.message, 0), 0u) << r.err().message;
  }
  // The scheme is case-insensitive, surrounding blanks are ignored.
  auto r = parse_start(make_request("POST", start_url,
                                    R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"}})",
                                    {{"Authorization", " bearer  tok.en "}}));
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->ctx.bearer_token, "tok.en");
}

reply base_reply_for_request_id(std::string id) {
  reply r;
  r.session_id = "s-1";
  r.request_id = std::move(id);
  return r;
}

TEST(BotApiStart, RequestIdComesFromTheServerThenTheHeader) {
  auto req = make_request("POST", start_url,
                          R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"}})");
  req.request_id = "server-made";
  EXPECT_EQ(parse_start(req)->ctx.request_id, "server-made");
  req.request_id.clear();
  EXPECT_EQ(parse_start(req)->ctx.request_id, "36a73651-a46d-4d16-9a8a-fd436ed62e1a");
  // A value that could break a response header is dropped.
  req = make_request("POST", start_url,
                     R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"}})",
                     {{"X-Request-ID", "a\r\nSet-Cookie: x"}});
  EXPECT_EQ(parse_start(req)->ctx.request_id, "");
  // ... and left out of the response, where the server's own id stands.
  auto r = base_reply_for_request_id("");
  for (const auto& [k, v] : render_continue(r, v1::TurnResult()).headers)
    EXPECT_NE(k, "X-Request-ID");
  for (const auto& [k, v] : render_error(400, "m", "/p", "", 0).headers)
    EXPECT_NE(k, "X-Request-ID");
  // Spaces are fine in a header value.
  req = make_request("POST", start_url,
                     R"({"externalSessionKey":"k","forceConfig":{"endpoint":"e"}})",
                     {{"X-Request-ID", "trace 42"}});
  EXPECT_EQ(parse_start(req)->ctx.request_id, "trace 42");
}

TEST(BotApiStart, WrongPathIs404) {
  auto r = parse_start(make_request("POST", messages_url, "{}"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().status, 404);
}

// ------------------------------------------------------------------ continue

continue_request parse_ok(const std::string& body, bool check_contract = true) {
  if (check_contract) {
    auto v = contract().validate_request(messages_path, "POST", json::parse(body));
    EXPECT_TRUE(v.empty()) << body << "\n" << test::to_string(v);
  }
  auto r = parse_continue(make_request("POST", messages_url, body, {{"X-Runtime-CRC", "crc-1"}}));
  EXPECT_TRUE(r.ok()) << body << ": " << (r.ok() ? "" : r.err().message);
  return r.ok() ? std::move(r).value() : continue_request{};
}

TEST(BotApiContinue, Text) {
  auto m = parse_ok(
      R"({"message":{"type":"text","sequenceId":3,"inReplyToMessageId":"m-1","text":"where is my order"},
                        "responseOptions":{"intents":true}})");
  EXPECT_EQ(m.session_id, "s-1");
  EXPECT_EQ(m.ctx.org_id, "demo");
  EXPECT_EQ(m.ctx.bearer_token, "key-123");
  EXPECT_EQ(m.ctx.runtime_crc, "crc-1");
  EXPECT_EQ(m.kind, message_kind::text);
  EXPECT_EQ(m.sequence_id, 3);
  EXPECT_EQ(m.in_reply_to, "m-1");
  EXPECT_EQ(m.text, "where is my order");
  EXPECT_TRUE(m.options.intents);
}

TEST(BotApiContinue, ChoiceByIndexAndById) {
  auto m = parse_ok(R"({"message":{"type":"choice","sequenceId":4,"choiceIndex":2}})");
  EXPECT_EQ(m.kind, message_kind::choice);
  EXPECT_EQ(m.choice_index.value_or(0), 2);
  EXPECT_FALSE(m.choice_id.has_value());
  m = parse_ok(
      R"({"message":{"type":"choice","sequenceId":4,"choiceIndex":null,"choiceId":"order status"}})");
  EXPECT_FALSE(m.choice_index.has_value());
  EXPECT_EQ(m.choice_id.value_or(""), "order status");
}

TEST(BotApiContinue, Redirect) {
  auto m = parse_ok(R"({"message":{"type":"redirect","sequenceId":5,"dialogId":"main_menu"}})");
  EXPECT_EQ(m.kind, message_kind::redirect);
  EXPECT_EQ(m.dialog_id, "main_menu");
}

TEST(BotApiContinue, TransferSucceededAndFailed) {
  auto m = parse_ok(
      R"({"message":{"type":"transferSucceeded","sequenceId":6,"inReplyToMessageId":"x"}})");
  EXPECT_EQ(m.kind, message_kind::transfer_succeeded);
  m = parse_ok(
      R"({"message":{"type":"transferFailed","sequenceId":7,"reason":"NoAgentAvailable","description":"all busy"}})");
  EXPECT_EQ(m.kind, message_kind::transfer_failed);
  EXPECT_EQ(m.reason, "NoAgentAvailable");
  EXPECT_EQ(m.description, "all busy");
}

TEST(BotApiContinue, EndSessionMessage) {
  // EndSessionMessage is in the contract's components but not in the envelope's
  // oneOf ("private spec only"): accepted, not contract-checked.
  auto m =
      parse_ok(R"({"message":{"type":"endSession","sequenceId":8,"reason":"UserRequest"}})", false);
  EXPECT_EQ(m.kind, message_kind::end_session);
  EXPECT_EQ(m.reason, "UserRequest");
  auto v = contract().validate_schema(
      "#/components/schemas/EndSessionMessage",
      json::parse(R"({"type":"endSession","sequenceId":8,"reason":"UserRequest"})"));
  EXPECT_TRUE(v.empty()) << test::to_string(v);
}

TEST(BotApiContinue, SetVariables) {
  auto m = parse_ok(R"({"message":{"type":"setVariables","sequenceId":9,
                        "variables":[{"name":"customer_name","type":"text","value":"Ada"}]}})");
  EXPECT_EQ(m.kind, message_kind::set_variables);
  ASSERT_EQ(m.variables.size(), 1u);
  EXPECT_EQ(m.variables[0].name, "customer_name");
  EXPECT_EQ(m.variables[0].value.text(), "Ada");
}

TEST(BotApiContinue, LargeSequenceIds) {
  auto m = parse_ok(R"({"message":{"type":"text","sequenceId":9223372036854775807,"text":"x"}})");
  EXPECT_EQ(m.sequence_id, std::numeric_limits<std::int64_t>::max());
  m = parse_ok(R"({"message":{"type":"text","sequenceId":0,"text":""}})");
  EXPECT_EQ(m.sequence_id, 0);
}

TEST(BotApiContinue, EveryBadFieldIsNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "body: required JSON object"},
      {"nope", "body: malformed JSON"},
      {"[1]", "body: must be a JSON object"},
      {"{}", "message: required object"},
      {R"({"message":"hi"})", "message: required object"},
      {R"({"message":{"sequenceId":1,"text":"x"}})", "message.type: required, one of"},
      {R"({"message":{"type":"image","sequenceId":1}})", "message.type: required, one of"},
      {R"({"message":{"type":7,"sequenceId":1}})", "message.type: required, one of"},
      {R"({"message":{"type":"text","text":"x"}})", "message.sequenceId: required integer"},
      {R"({"message":{"type":"text","sequenceId":"1","text":"x"}})",
       "message.sequenceId: required integer"},
      {R"({"message":{"type":"text","sequenceId":1.5,"text":"x"}})",
       "message.sequenceId: required integer"},
      {R"({"message":{"type":"text","sequenceId":null,"text":"x"}})",
       "message.sequenceId: required integer"},
      {R"({"message":{"type":"text","sequenceId":-1,"text":"x"}})",
       "message.sequenceId: must not be negative"},
      {R"({"message":{"type":"text","sequenceId":18446744073709551615,"text":"x"}})",
       "message.sequenceId: must fit in a signed 64-bit integer"},
      {R"({"message":{"type":"text","sequenceId":1,"inReplyToMessageId":5,"text":"x"}})",
       "message.inReplyToMessageId: must be a string"},
      {R"({"message":{"type":"text","sequenceId":1}})", "message.text: required string"},
      {R"({"message":{"type":"text","sequenceId":1,"text":null}})",
       "message.text: required string"},
      {R"({"message":{"type":"choice","sequenceId":1}})",
       "message.choiceIndex: either choiceIndex or choiceId is required"},
      {R"({"message":{"type":"choice","sequenceId":1,"choiceIndex":null,"choiceId":null}})",
       "message.choiceIndex: either choiceIndex or choiceId is required"},
      {R"({"message":{"type":"choice","sequenceId":1,"choiceIndex":"1"}})",
       "message.choiceIndex: must be an integer or null"},
      {R"({"message":{"type":"choice","sequenceId":1,"choiceIndex":0}})",
       "message.choiceIndex: must be at least 1"},
      {R"({"message":{"type":"choice","sequenceId":1,"choiceIndex":-3}})",
       "message.choiceIndex: must be at least 1"},
      {R"({"message":{"type":"choice","sequenceId":1,"choiceId":2}})",
       "message.choiceId: must be a string or null"},
      {R"({"message":{"type":"redirect","sequenceId":1}})", "message.dialogId: required string"},
      {R"({"message":{"type":"transferFailed","sequenceId":1}})",
       "message.reason: required, one of NoAgentAvailable, Error"},
      {R"({"message":{"type":"transferFailed","sequenceId":1,"reason":"Busy"}})",
       "message.reason: required, one of"},
      {R"({"message":{"type":"transferFailed","sequenceId":1,"reason":"Error","description":1}})",
       "message.description: must be a string"},
      {R"({"message":{"type":"endSession","sequenceId":1}})",
       "message.reason: required, one of UserRequest, Transfer, Expiration, Error, Other"},
      {R"({"message":{"type":"endSession","sequenceId":1,"reason":"Bored"}})",
       "message.reason: required, one of"},
      {R"({"message":{"type":"setVariables","sequenceId":1}})",
       "message.variables: required array of variables"},
      {R"({"message":{"type":"setVariables","sequenceId":1,"variables":[{"name":"a","type":"number","value":true}]}})",
       "message.variables[0].value: must be a number"},
      {R"({"message":{"type":"text","sequenceId":1,"text":"x"},"responseOptions":{"variables":{"include":1,"onlyChanged":true}}})",
       "responseOptions.variables.include: required boolean"},
  };
  for (const auto& [body, message] : cases) {
    SCOPED_TRACE(body);
    auto r = parse_continue(make_request("POST", messages_url, body));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().status, 400);
    EXPECT_EQ(r.err().error, "BadRequestError");
    EXPECT_EQ(r.err().message.rfind(message, 0), 0u) << "got: " << r.err().message;
  }
}

TEST(BotApiContinue, HeadersAndPath) {
  const std::string body = R"({"message":{"type":"text","sequenceId":1,"text":"x"}})";
  auto r = parse_continue(make_request("POST", messages_url, body, {{"Authorization", ""}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().status, 401);
  EXPECT_EQ(r.err().error, "UnauthorizedError");
  r = parse_continue(make_request("POST", messages_url, body, {{"X-Org-Id", ""}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().status, 400);
  EXPECT_EQ(r.err().message, "X-Org-Id: required header");
  r = parse_continue(make_request("POST", "/v5.3.0/sessions/s%201/messages", body));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().status, 404);
}

// ------------------------------------------------------------------ end

TEST(BotApiEnd, ParsesEveryReason) {
  for (const char* reason : {"UserRequest", "Transfer", "Expiration", "Error", "Other"}) {
    auto r = parse_end(make_request("DELETE", session_url, "", {{"X-Session-End-Reason", reason}}));
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_EQ(r->reason, reason);
    EXPECT_EQ(r->session_id, "s-1");
    EXPECT_EQ(r->ctx.org_id, "demo");
    EXPECT_EQ(r->ctx.bearer_token, "key-123");
  }
}

TEST(BotApiEnd, ReasonHeaderIsRequiredAndChecked) {
  for (const char* reason : {"", "userrequest", "Bored"}) {
    auto r = parse_end(make_request("DELETE", session_url, "", {{"X-Session-End-Reason", reason}}));
    ASSERT_FALSE(r.ok()) << reason;
    EXPECT_EQ(r.err().status, 400);
    EXPECT_EQ(r.err().message.rfind("X-Session-End-Reason: required header, one of UserRequest", 0),
              0u)
        << r.err().message;
  }
  auto r = parse_end(make_request("DELETE", session_url, "",
                                  {{"X-Session-End-Reason", "Other"}, {"Authorization", "x"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().status, 401);
  r = parse_end(make_request("DELETE", messages_url, "", {{"X-Session-End-Reason", "Other"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().status, 404);
}

// ------------------------------------------------------------------ to_input

v1::TurnResult menu_turn() {
  v1::TurnResult t;
  t.mutable_state()->set_status(v1::AWAITING_INPUT);
  auto* m = t.add_messages();
  m->set_text("How can I help?");
  for (auto [label, payload] : std::vector<std::pair<const char*, const char*>>{
           {"Order status", "order status"}, {"Talk to an agent", "agent"}, {"Nothing", ""}}) {
    auto* c = m->add_choices();
    c->set_label(label);
    c->set_payload(payload);
  }
  return t;
}

TEST(BotApiInput, TextAndChoices) {
  auto last = menu_turn();
  auto in =
      to_input(parse_ok(R"({"message":{"type":"text","sequenceId":1,"text":"hi"}})"), &last, 99);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->text(), "hi");
  EXPECT_EQ(in->now_unix(), 99);
  in = to_input(parse_ok(R"({"message":{"type":"choice","sequenceId":1,"choiceIndex":2}})"), &last,
                0);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->payload(), "agent");
  in = to_input(parse_ok(R"({"message":{"type":"choice","sequenceId":1,"choiceIndex":3}})"), &last,
                0);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->payload(), "Nothing");  // no payload: the label is the id
  in = to_input(
      parse_ok(R"({"message":{"type":"choice","sequenceId":1,"choiceId":"order status"}})"), &last,
      0);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->payload(), "order status");
}

TEST(BotApiInput, Failures) {
  auto last = menu_turn();
  auto in = to_input(parse_ok(R"({"message":{"type":"choice","sequenceId":1,"choiceIndex":4}})"),
                     &last, 0);
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.err().status, 400);
  EXPECT_EQ(in.err().message, "message.choiceIndex: no choice 4 among the 3 offered");
  in = to_input(parse_ok(R"({"message":{"type":"choice","sequenceId":1,"choiceIndex":1}})"),
                nullptr, 0);
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.err().message.rfind("message.choiceIndex:", 0), 0u);
  in = to_input(parse_ok(R"({"message":{"type":"redirect","sequenceId":1,"dialogId":"d"}})"), &last,
                0);
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.err().message.rfind("message.type:", 0), 0u);
}

// ------------------------------------------------------------------ rendering

reply base_reply() {
  reply r;
  r.session_id = "57904eb6-5352-4c5e-adf6-5f100572cf5d";
  r.sequence_id = 2;
  r.bot_version = "order-status@0123456789abcdef";
  r.processed_sequence_ids = {2};
  r.request_id = "36a73651-a46d-4d16-9a8a-fd436ed62e1a";
  return r;
}

v1::TurnResult text_turn(std::initializer_list<const char*> texts) {
  v1::TurnResult t;
  t.mutable_state()->set_status(v1::AWAITING_INPUT);
  for (const char* s : texts) t.add_messages()->set_text(s);
  return t;
}

void expect_uuid(const std::string& id) {
  static const std::regex uuid(
      "[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  EXPECT_TRUE(std::regex_match(id, uuid)) << id;
}

TEST(BotApiRender, StartWithTextMessages) {
  auto r = base_reply();
  r.sequence_id = 0;
  r.processed_sequence_ids = {0};
  auto resp = render_start(r, text_turn({"Hi!", "How can I help?"}));
  expect_conforms(resp, start_path, "POST");
  EXPECT_EQ(resp.status, 200);
  auto body = json::parse(resp.body);
  EXPECT_EQ(body["sessionId"], r.session_id);
  EXPECT_EQ(body["botVersion"], r.bot_version);
  EXPECT_EQ(body["processedSequenceIds"], json::array({0}));
  ASSERT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["messages"][0]["type"], "text");
  EXPECT_EQ(body["messages"][0]["text"], "Hi!");
  EXPECT_EQ(body["messages"][0]["id"], message_id(r.session_id, 0, 0));
  EXPECT_EQ(body["messages"][1]["id"], message_id(r.session_id, 0, 1));
  EXPECT_EQ(body["_links"]["self"]["href"], "/v5.3.0/sessions/" + r.session_id);
  EXPECT_EQ(body["_links"]["messages"]["href"], "/v5.3.0/sessions/" + r.session_id + "/messages");
  EXPECT_FALSE(body.contains("variables"));
  EXPECT_FALSE(body.contains("intents"));
  EXPECT_EQ(*resp.headers.data(),
            (std::pair<std::string, std::string>{"X-Request-ID", r.request_id}));
  bool mode = false;
  for (const auto& [k, v] : resp.headers) mode |= (k == "X-Bot-Mode" && v == "default");
  EXPECT_TRUE(mode);
}

TEST(BotApiRender, ChoicesFollowTheirText) {
  auto r = base_reply();
  auto resp = render_continue(r, menu_turn());
  expect_conforms(resp, messages_path, "POST");
  auto body = json::parse(resp.body);
  EXPECT_FALSE(body.contains("sessionId"));
  ASSERT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["messages"][0]["type"], "text");
  EXPECT_EQ(body["messages"][0]["text"], "How can I help?");
  const auto& choices = body["messages"][1];
  EXPECT_EQ(choices["type"], "choices");
  EXPECT_EQ(choices["widget"], "buttons");
  ASSERT_EQ(choices["choices"].size(), 3u);
  EXPECT_EQ(choices["choices"][0],
            json::parse(R"({"label":"Order status","alias":"1","id":"order status"})"));
  EXPECT_EQ(choices["choices"][1]["alias"], "2");
  EXPECT_EQ(choices["choices"][2]["id"], "Nothing");

  // A menu without a prompt renders only the choices; empty texts are skipped.
  v1::TurnResult t;
  t.mutable_state()->set_status(v1::AWAITING_INPUT);
  t.add_messages();
  auto* m = t.add_messages();
  m->add_choices()->set_label("Yes");
  resp = render_continue(r, t);
  expect_conforms(resp, messages_path, "POST");
  body = json::parse(resp.body);
  ASSERT_EQ(body["messages"].size(), 1u);
  EXPECT_EQ(body["messages"][0]["type"], "choices");
  EXPECT_EQ(body["messages"][0]["id"], message_id(r.session_id, 2, 0));
}

TEST(BotApiRender, TransferBecomesEscalate) {
  auto t = text_turn({"Connecting you to an agent."});
  t.mutable_state()->set_status(v1::TRANSFERRED);
  t.mutable_transfer()->set_queue("support");
  for (const char* target : {"bot:0Xx1", "flow:F1", "QUEUE:Q2", "skill:billing", "plain"})
    t.mutable_transfer()->add_targets(target);
  for (bool start : {true, false}) {
    auto resp = start ? render_start(base_reply(), t) : render_continue(base_reply(), t);
    expect_conforms(resp, start ? start_path : messages_path, "POST");
    auto body = json::parse(resp.body);
    ASSERT_EQ(body["messages"].size(), 2u);
    const auto& esc = body["messages"][1];
    EXPECT_EQ(esc["type"], "escalate");
    EXPECT_EQ(esc["targets"], json::parse(R"([
      {"type":"Salesforce:Core:Queue:Id","value":"support"},
      {"type":"Salesforce:Core:Bot:Id","value":"0Xx1"},
      {"type":"Salesforce:Core:Flow:Id","value":"F1"},
      {"type":"Salesforce:Core:Queue:Id","value":"Q2"},
      {"type":"Salesforce:Core:Skill:Id","value":"billing"},
      {"type":"Salesforce:Core:Skill:Id","value":"plain"}])"));
  }
  // No queue and no targets: still a valid escalate with an empty list.
  v1::TurnResult bare;
  bare.mutable_state()->set_status(v1::TRANSFERRED);
  auto resp = render_continue(base_reply(), bare);
  expect_conforms(resp, messages_path, "POST");
  EXPECT_EQ(json::parse(resp.body)["messages"][0]["targets"], json::array());
}

TEST(BotApiRender, EndedBecomesSessionEnded) {
  const std::vector<std::pair<v1::EndReason, const char*>> reasons = {
      {v1::COMPLETED, "Action"},
      {v1::INFINITE_LOOP_DETECTED, "InfiniteLoopDetected"},
      {v1::ERROR, "Error"},
      {v1::PROGRAM_MISMATCH, "Error"},
      {v1::END_REASON_UNSPECIFIED, "Error"}};
  for (auto [reason, name] : reasons) {
    auto t = text_turn({"Goodbye!"});
    t.mutable_state()->set_status(v1::ENDED);
    t.set_end_reason(reason);
    auto resp = render_continue(base_reply(), t);
    expect_conforms(resp, messages_path, "POST");
    auto body = json::parse(resp.body);
    ASSERT_EQ(body["messages"].size(), 2u);
    EXPECT_EQ(body["messages"][1]["type"], "sessionEnded");
    EXPECT_EQ(body["messages"][1]["reason"], name);
  }
}

TEST(BotApiRender, EndSession) {
  auto r = base_reply();
  auto resp = render_end(r);
  expect_conforms(resp, session_path, "DELETE");
  auto body = json::parse(resp.body);
  ASSERT_EQ(body["messages"].size(), 1u);
  EXPECT_EQ(body["messages"][0]["type"], "sessionEnded");
  EXPECT_EQ(body["messages"][0]["reason"], "ClientRequest");
  EXPECT_EQ(body["messages"][0]["id"], message_id(r.session_id, r.sequence_id, end_message_index));
  EXPECT_NE(body["messages"][0]["id"], message_id(r.session_id, r.sequence_id, 0));
  r.options.metrics = r.options.intents = r.options.entities = true;
  expect_conforms(render_end(r), session_path, "DELETE");
}

v1::Value text_value(const char* s) {
  v1::Value v;
  v.set_text(s);
  return v;
}
v1::Value number_value(double d) {
  v1::Value v;
  v.set_number(d);
  return v;
}

std::vector<variable_out> every_kind_of_variable() {
  std::vector<variable_out> vars;
  auto add = [&](const char* name, v1::VarType type, v1::Value v) {
    vars.push_back(variable_out{name, type, std::move(v)});
  };
  add("note", v1::VAR_TEXT, text_value("hello"));
  add("qty", v1::VAR_NUMBER, number_value(3));
  add("ratio", v1::VAR_NUMBER, number_value(0.25));
  v1::Value b;
  b.set_boolean(true);
  add("shipped", v1::VAR_BOOLEAN, b);
  add("day", v1::VAR_DATE, text_value("2026-11-26"));
  add("when", v1::VAR_DATETIME, text_value("2026-11-26T14:30:00"));
  add("amount", v1::VAR_MONEY, number_value(10.4));
  v1::Value list;
  *list.mutable_list()->add_items() = text_value("a");
  *list.mutable_list()->add_items() = number_value(2);
  add("items", v1::VAR_LIST, list);
  v1::Value obj;
  auto* f = obj.mutable_object()->add_fields();
  f->set_key("city");
  *f->mutable_value() = text_value("Paris");
  f = obj.mutable_object()->add_fields();
  f->set_key("tags");
  *f->mutable_value() = list;
  f = obj.mutable_object()->add_fields();
  f->set_key("zip");
  *f->mutable_value() = number_value(75001);
  add("address", v1::VAR_OBJECT, obj);
  v1::Value null;
  null.set_null_value(true);
  add("nothing", v1::VAR_TEXT, null);
  add("unset_list", v1::VAR_LIST, v1::Value());
  add("untyped", v1::VAR_TYPE_UNSPECIFIED, number_value(1));
  return vars;
}

TEST(BotApiRender, VariablesIntentsEntitiesMetrics) {
  auto r = base_reply();
  r.options.variables = r.options.intents = r.options.entities = r.options.metrics = true;
  r.currency = "EUR";
  r.variables = every_kind_of_variable();
  auto t = text_turn({"Your order ships tomorrow."});
  auto* i = t.add_intents();
  i->set_name("order_status");
  i->set_confidence(0.75f);
  auto* e = t.add_entities();
  e->set_entity("order_number");
  e->set_value("AB-123456");
  e->set_text("ab123456");
  for (bool start : {true, false}) {
    auto resp = start ? render_start(r, t) : render_continue(r, t);
    expect_conforms(resp, start ? start_path : messages_path, "POST");
    auto body = json::parse(resp.body);
    EXPECT_EQ(body["metrics"], json::object());
    EXPECT_EQ(
        body["intents"],
        json::parse(
            R"([{"label":"order_status","confidenceScore":0.75,"intentSource":"CORE_NLP"}])"));
    EXPECT_EQ(
        body["entities"],
        json::parse(
            R"([{"confidenceScore":1,"value":"AB-123456","type":"order_number","entitySource":"BOT_SERVICE"}])"));
    const auto& vars = body["variables"];
    ASSERT_EQ(vars.size(), r.variables.size());
    EXPECT_EQ(vars[0], json::parse(R"({"name":"note","type":"text","value":"hello"})"));
    EXPECT_EQ(vars[1]["value"].dump(), "3");
    EXPECT_EQ(vars[2]["value"], 0.25);
    EXPECT_EQ(vars[3]["value"], true);
    EXPECT_EQ(vars[4]["type"], "date");
    EXPECT_EQ(vars[5]["type"], "dateTime");
    EXPECT_EQ(vars[6], json::parse(R"({"name":"amount","type":"money","value":"EUR 10.40"})"));
    EXPECT_EQ(vars[7]["value"],
              json::parse(R"([{"type":"text","value":"a"},{"type":"number","value":2}])"));
    EXPECT_EQ(vars[8]["value"][0], json::parse(R"({"name":"city","type":"text","value":"Paris"})"));
    EXPECT_EQ(vars[8]["value"][1]["type"], "list");
    EXPECT_TRUE(vars[9]["value"].is_null());
    EXPECT_TRUE(vars[10]["value"].is_null());
    EXPECT_EQ(vars[11]["type"], "number");
  }
  // An exact match is a DIRECT intent.
  t.set_matched_by("exact");
  auto body = json::parse(render_continue(r, t).body);
  EXPECT_EQ(body["intents"][0]["intentSource"], "DIRECT");
}

TEST(BotApiRender, RetriesAreByteIdentical) {
  auto r = base_reply();
  r.options.variables = true;
  r.variables = every_kind_of_variable();
  auto t = menu_turn();
  auto a = render_continue(r, t);
  auto b = render_continue(r, t);
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.headers, b.headers);
  // Another turn of the same session gets other message ids.
  r.sequence_id = 3;
  EXPECT_NE(render_continue(r, t).body, a.body);
}

TEST(BotApiRender, MessageIdsAreStableUuids) {
  std::set<std::string> seen;
  for (const char* session : {"s-1", "s-2", "s-10"})
    for (std::int64_t seq : {0, 1, 2, 10})
      for (std::size_t index : {0u, 1u, 2u}) {
        auto id = message_id(session, seq, index);
        expect_uuid(id);
        EXPECT_EQ(id, message_id(session, seq, index));
        EXPECT_TRUE(seen.insert(id).second) << session << " " << seq << " " << index;
      }
  // Field boundaries matter: ("s-1", 10) and ("s-11", 0) are different turns.
  EXPECT_NE(message_id("s-1", 10, 0), message_id("s-11", 0, 0));
  // Known value: changing the scheme breaks recorded replays, so pin it.
  EXPECT_EQ(message_id("s-1", 1, 0), "fd8b1ec6-6c6c-8d6b-b392-c135627c85cb");
}

TEST(BotApiRender, RuntimeCrcAndBaseUrl) {
  auto r = base_reply();
  r.base_url = "https://bots.example.com";
  auto resp = render_continue(r, text_turn({"x"}));
  expect_conforms(resp, messages_path, "POST");
  EXPECT_EQ(json::parse(resp.body)["_links"]["self"]["href"],
            "https://bots.example.com/v5.3.0/sessions/" + r.session_id);
  std::string crc;
  for (const auto& [k, v] : resp.headers)
    if (k == "X-Runtime-CRC") crc = v;
  EXPECT_EQ(crc.size(), 16u);
  r.runtime_crc = "given";
  resp = render_continue(r, text_turn({"x"}));
  for (const auto& [k, v] : resp.headers)
    if (k == "X-Runtime-CRC") {
      EXPECT_EQ(v, "given");
    }
}

TEST(BotApiRender, InvalidUtf8FromTheBotIsReplaced) {
  auto resp = render_continue(base_reply(), text_turn({"caf\xc3"}));
  expect_conforms(resp, messages_path, "POST");
  EXPECT_EQ(json::parse(resp.body)["messages"][0]["text"], "caf\xef\xbf\xbd");
}

TEST(BotApiRender, ErrorsConformForEveryStatusAndOperation) {
  const std::vector<std::pair<int, const char*>> statuses = {
      {400, "BadRequestError"},       {401, "UnauthorizedError"},
      {403, "ForbiddenError"},        {404, "NotFoundError"},
      {405, "MethodNotAllowedError"}, {422, "RequestProcessingException"},
      {423, "ServerBusyError"},       {429, "TooManyRequestsError"},
      {500, "InternalServerError"},   {503, "ServiceUnavailable"}};
  const std::vector<std::pair<const char*, const char*>> ops = {{start_path, "POST"},
                                                                {messages_path, "POST"},
                                                                {session_path, "DELETE"},
                                                                {"/status", "GET"},
                                                                {"/versions", "GET"}};
  for (auto [status, name] : statuses)
    for (auto [path, method] : ops) {
      auto resp = render_error(
          status, "message.sequenceId: required integer", "/v5.3.0/sessions/s-1/messages", "rid-1",
          1531245973799,
          status == 429 || status == 503 ? std::optional<std::int64_t>(2) : std::nullopt);
      EXPECT_EQ(resp.status, status);
      expect_conforms(resp, path, method);
      auto body = json::parse(resp.body);
      EXPECT_EQ(body["status"], status);
      EXPECT_EQ(body["error"], name);
      EXPECT_EQ(body["requestId"], "rid-1");
      EXPECT_EQ(body["path"], "/v5.3.0/sessions/s-1/messages");
      EXPECT_EQ(body["message"], "message.sequenceId: required integer");
      EXPECT_EQ(body["timestamp"], 1531245973799);
      bool retry_after = false;
      for (const auto& [k, v] : resp.headers)
        if (k == "Retry-After") retry_after = (v == "2");
      EXPECT_EQ(retry_after, status == 429 || status == 503);
    }
}

TEST(BotApiRender, ParseFailuresRenderAsContractErrors) {
  auto req = make_request("POST", messages_url, R"({"message":{"type":"text","text":"x"}})");
  auto parsed_req = parse_continue(req);
  ASSERT_FALSE(parsed_req.ok());
  auto resp = render_failure(parsed_req.err(), req, 42);
  expect_conforms(resp, messages_path, "POST");
  auto body = json::parse(resp.body);
  EXPECT_EQ(body["status"], 400);
  EXPECT_EQ(body["message"], "message.sequenceId: required integer");
  EXPECT_EQ(body["requestId"], "36a73651-a46d-4d16-9a8a-fd436ed62e1a");
  EXPECT_EQ(body["path"], messages_url);

  req = make_request("POST", start_url, "{}", {{"Authorization", ""}});
  resp = render_failure(parse_start(req).err(), req, 42);
  expect_conforms(resp, start_path, "POST");
  EXPECT_EQ(resp.status, 401);

  req = make_request("GET", "/v5.3.0/nowhere\xff");
  auto route = match_route(req.method, req.path);
  ASSERT_FALSE(route.ok());
  resp = render_failure(route.err(), req, 42);
  EXPECT_EQ(resp.status, 404);
  expect_conforms(resp, session_path, "DELETE");
}

TEST(BotApiRender, StatusAndVersions) {
  auto up = render_status(true);
  expect_conforms(up, "/status", "GET");
  EXPECT_EQ(up.body, R"({"status":"UP"})");
  auto down = render_status(false);
  expect_conforms(down, "/status", "GET");
  EXPECT_EQ(down.body, R"({"status":"DOWN"})");
  auto versions = render_versions();
  expect_conforms(versions, "/versions", "GET");
  EXPECT_EQ(versions.body, R"({"versions":[{"versionNumber":"v5.3.0","status":"ACTIVE"}]})");
}

// ------------------------------------------------------------------ response variables

TEST(BotApiVariables, SelectionFollowsTheOptions) {
  v1::Program p;
  for (auto [name, type] :
       std::vector<std::pair<const char*, v1::VarType>>{{"customer_name", v1::VAR_TEXT},
                                                        {"attempts", v1::VAR_NUMBER},
                                                        {"order", v1::VAR_TEXT}}) {
    auto* v = p.add_variables();
    v->set_name(name);
    v->set_type(type);
  }
  *p.mutable_variables(1)->mutable_default_value() = number_value(0);
  v1::State before;
  v1::State after;
  auto* slot = after.add_vars();
  slot->set_index(2);
  *slot->mutable_value() = text_value("AB-123456");

  response_options o;
  EXPECT_TRUE(response_variables(p, after, o).empty());
  o.variables = true;
  auto all = response_variables(p, after, o);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_TRUE(all[0].value.null_value());
  EXPECT_DOUBLE_EQ(all[1].value.number(), 0);
  EXPECT_EQ(all[1].type, v1::VAR_NUMBER);
  EXPECT_EQ(all[2].value.text(), "AB-123456");

  o.filter = {"attempts", "order"};
  auto filtered = response_variables(p, after, o);
  ASSERT_EQ(filtered.size(), 2u);
  EXPECT_EQ(filtered[0].name, "attempts");

  o.filter.clear();
  o.only_changed = true;
  auto changed = response_variables(p, after, o, &before);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].name, "order");
  EXPECT_TRUE(response_variables(p, after, o, &after).empty());
  EXPECT_EQ(response_variables(p, after, o, nullptr).size(), 3u);

  auto r = base_reply();
  r.options = o;
  r.variables = all;
  expect_conforms(render_continue(r, text_turn({"ok"})), messages_path, "POST");
}

// ------------------------------------------------------------------ round trips

TEST(BotApiRoundTrip, RenderedVariablesParseBackToTheSameValues) {
  auto r = base_reply();
  r.options.variables = true;
  r.variables = every_kind_of_variable();
  auto rendered = json::parse(render_continue(r, text_turn({"x"})).body)["variables"];
  json start = {
      {"externalSessionKey", "k"}, {"forceConfig", {{"endpoint", "e"}}}, {"variables", rendered}};
  auto v = contract().validate_request(start_path, "POST", start);
  EXPECT_TRUE(v.empty()) << test::to_string(v);
  auto parsed_start = parse_start(make_request("POST", start_url, start.dump()));
  ASSERT_TRUE(parsed_start.ok()) << parsed_start.err().message;
  ASSERT_EQ(parsed_start->variables.size(), r.variables.size());
  for (std::size_t i = 0; i < r.variables.size(); ++i) {
    SCOPED_TRACE(r.variables[i].name);
    const auto& original = r.variables[i].value;
    const auto& back = parsed_start->variables[i].value;
    if (original.kind_case() == v1::Value::KIND_NOT_SET) {
      EXPECT_TRUE(back.null_value());
      continue;
    }
    EXPECT_EQ(back.SerializeAsString(), original.SerializeAsString())
        << back.DebugString() << " vs " << original.DebugString();
  }
}

TEST(BotApiRoundTrip, ChoiceIdsLeadBackToThePayload) {
  auto last = menu_turn();
  auto rendered = json::parse(render_continue(base_reply(), last).body);
  const auto& choices = rendered["messages"][1]["choices"];
  for (std::size_t i = 0; i < choices.size(); ++i) {
    json by_id = {{"message",
                   {{"type", "choice"},
                    {"sequenceId", 3},
                    {"choiceId", choices[i]["id"]},
                    {"inReplyToMessageId", rendered["messages"][1]["id"]}}}};
    auto in = to_input(parse_ok(by_id.dump()), &last, 0);
    ASSERT_TRUE(in.ok());
    json by_alias = {{"message",
                      {{"type", "choice"},
                       {"sequenceId", 3},
                       {"choiceIndex", std::stoi(choices[i]["alias"].get<std::string>())}}}};
    auto in2 = to_input(parse_ok(by_alias.dump()), &last, 0);
    ASSERT_TRUE(in2.ok());
    EXPECT_EQ(in->payload(), in2->payload());
    const auto& c = last.messages(0).choices(static_cast<int>(i));
    EXPECT_EQ(in->payload(), c.payload().empty() ? c.label() : c.payload());
  }
}

}  // namespace
}  // namespace parley::channels::botapi
