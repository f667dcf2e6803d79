// Web chat in a region of two nodes, as behind a load balancer that spreads requests:
// the conversation's WebSocket is on one node and its posts go to the other. Every
// reply must still arrive on the socket, in order, without a reconnect: the node that
// appends to the conversation's log tells the node holding the stream.

#include "tests/cluster/fixture.hpp"
#include "tests/support/directline_stream.hpp"

#include "src/channels/directline/directline.hpp"

namespace {

using namespace parley::cluster::testing;

struct answer {
  int status = 0;
  json body;
};

answer dl_call(const std::string& url, const std::string& method, const std::string& bearer,
               const json& body = nullptr) {
  parley::http::client_request r;
  r.method = method;
  r.url = url;
  r.timeout = 20s;
  r.headers = {{"Authorization", "Bearer " + bearer}, {"Content-Type", "application/json"}};
  if (!body.is_null()) r.body = body.dump();
  auto res = parley::http::fetch(r);
  if (!res.ok()) return {0, json(res.err().message)};
  return {res->status, json::parse(res->body, nullptr, false)};
}

/// `stream` (ws://host:port/...) pointing at the node whose base URL is `base`.
std::string on_node(const std::string& stream, const std::string& base) {
  auto path = stream.find('/', std::string("ws://").size());
  return "ws://" + base.substr(std::string("http://").size()) + stream.substr(path);
}

class DirectLineRegion : public Cluster {};

TEST_F(DirectLineRegion, RepliesReachTheSocketOnAnotherNode) {
  start_region(2);
  ASSERT_FALSE(HasFatalFailure());
  const auto a = region_->node(0).url(), b = region_->node(1).url();
  const auto secret =
      parley::channels::directline::make_secret(tenant_, "counter", "region-test-" + tenant_);
  auto put = dl_call(a + "/admin/v1/tenants/" + tenant_ + "/secrets/directline.counter", "PUT",
                     admin_token, {{"value", secret}});
  ASSERT_EQ(put.status, 201) << put.body.dump();

  auto conv = dl_call(a + "/v3/directline/conversations", "POST", secret);
  ASSERT_EQ(conv.status, 201) << conv.body.dump();
  const std::string id = conv.body.value("conversationId", "");
  const std::string token = conv.body.value("token", "");
  // The socket on node b; the replay brings the welcome.
  parley::test::stream_client ws(on_node(conv.body.value("streamUrl", ""), b));
  ASSERT_FALSE(
      ws.until([](const json& x) { return x.value("text", "") == "Say something."; }).is_null());

  // Posts through node a, then b, then a: each reply arrives on b's socket, in order.
  const char* via[] = {"a", "b", "a"};
  for (int i = 1; i <= 3; ++i) {
    const auto& node = via[i - 1][0] == 'a' ? a : b;
    const std::string text = "hello " + std::to_string(i);
    auto p = dl_call(node + "/v3/directline/conversations/" + id + "/activities", "POST", token,
                     {{"type", "message"},
                      {"from", {{"id", "user"}}},
                      {"text", text},
                      {"channelData", {{"clientActivityID", "r-" + std::to_string(i)}}}});
    ASSERT_EQ(p.status, 200) << "post " << i << " via " << via[i - 1] << ": " << p.body.dump();
    const std::string want = "turn " + std::to_string(i) + ": " + text;
    auto got = ws.until([&](const json& x) {
      // Any other bot text before it would be a reply out of order.
      auto t = x.value("text", "");
      if (x["from"].value("role", "") == "bot" && t.rfind("turn ", 0) == 0 && t != want)
        ADD_FAILURE() << "expected \"" << want << "\", got \"" << t << "\"";
      return t == want;
    });
    ASSERT_FALSE(got.is_null()) << "\"" << want << "\" (posted via " << via[i - 1]
                                << ") did not reach the socket on b";
  }
}

}  // namespace
