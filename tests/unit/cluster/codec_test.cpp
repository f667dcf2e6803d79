/// Unit tests of the messages between nodes (cluster/endpoint/codec): every field
/// survives the trip, and garbage is refused with a reason.

#include <gtest/gtest.h>

#include "cluster/endpoint/codec.hpp"

namespace parley::cluster {
namespace {

using actors::inbound;
using actors::turn_outcome;

TEST(Codec, AForwardedTurnKeepsEveryField) {
  inbound in;
  in.what = inbound::kind::payload;
  in.tenant = "acme";
  in.bot = "help";
  in.channel = "botapi";
  in.session_id = "s-1";
  in.external_key = "ext";
  in.message_id = "7";
  in.sequence_id = 7;
  in.text = "héllo";
  in.no_agent = true;
  in.choice_index = 2;
  in.variables["name"].set_text("Ada");
  in.now_unix = 1700000000;
  in.transcript_note = "[attachment 1 refused: scheme: URL has no scheme]";
  auto f = decode_forward(encode_forward(in, 1, "node-2"));
  ASSERT_TRUE(f) << f.err().message;
  EXPECT_EQ(f->hops, 1u);
  EXPECT_EQ(f->from, "node-2");
  EXPECT_EQ(f->in.what, inbound::kind::payload);
  EXPECT_EQ(f->in.tenant, "acme");
  EXPECT_EQ(f->in.bot, "help");
  EXPECT_EQ(f->in.channel, "botapi");
  EXPECT_EQ(f->in.session_id, "s-1");
  EXPECT_EQ(f->in.external_key, "ext");
  EXPECT_EQ(f->in.message_id, "7");
  EXPECT_EQ(f->in.sequence_id, 7);
  EXPECT_EQ(f->in.text, "héllo");
  EXPECT_TRUE(f->in.no_agent);
  EXPECT_EQ(f->in.choice_index, 2);
  ASSERT_EQ(f->in.variables.count("name"), 1u);
  EXPECT_EQ(f->in.variables.at("name").text(), "Ada");
  EXPECT_EQ(f->in.now_unix, 1700000000);
  EXPECT_EQ(f->in.transcript_note, "[attachment 1 refused: scheme: URL has no scheme]");
}

TEST(Codec, EveryKindOfInboundCrossesBetweenNodes) {
  // A redirect forwarded to the owner node was once refused as "unknown kind 8".
  EXPECT_EQ(inbound::last_kind, inbound::kind::timer);
  for (int k = 0; k <= static_cast<int>(inbound::last_kind); ++k) {
    inbound in;
    in.what = static_cast<inbound::kind>(k);
    in.text = "main";
    in.timer_due_ms = 1795651200123;
    auto f = decode_forward(encode_forward(in, 0, "node-1"));
    ASSERT_TRUE(f) << "kind " << k << ": " << f.err().message;
    EXPECT_EQ(static_cast<int>(f->in.what), k);
    EXPECT_EQ(f->in.timer_due_ms, 1795651200123);
  }
  inbound beyond;
  beyond.what = static_cast<inbound::kind>(static_cast<int>(inbound::last_kind) + 1);
  auto f = decode_forward(encode_forward(beyond, 0, "node-1"));
  ASSERT_FALSE(f);
  EXPECT_EQ(f.err().code, "bad_message");
}

TEST(Codec, AnAnswerKeepsItsResultAndWhoServedIt) {
  turn_outcome out;
  out.st = turn_outcome::status::replayed;
  out.message = "m";
  auto r = std::make_shared<bot::v1::TurnResult>();
  r->add_messages()->set_text("hi");
  out.result = r;
  out.session_id = "s";
  out.bot = "b";
  out.bot_version = 3;
  out.program_id = "b@1";
  out.served_by = "node-3";
  auto a = decode_answer(encode_answer(out));
  ASSERT_TRUE(a) << a.err().message;
  EXPECT_EQ(a->st, turn_outcome::status::replayed);
  EXPECT_EQ(a->message, "m");
  ASSERT_TRUE(a->result);
  ASSERT_EQ(a->result->messages_size(), 1);
  EXPECT_EQ(a->result->messages(0).text(), "hi");
  EXPECT_EQ(a->bot_version, 3u);
  EXPECT_EQ(a->program_id, "b@1");
  EXPECT_EQ(a->served_by, "node-3");

  turn_outcome none;
  none.st = turn_outcome::status::unavailable;
  auto b = decode_answer(encode_answer(none));
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->result);
}

TEST(Codec, GarbageIsRefusedWithAReason) {
  auto f = decode_forward(std::string("\xff\xff\xff", 3));
  ASSERT_FALSE(f);
  EXPECT_EQ(f.err().code, "bad_message");
  // A kind from a newer version than this node knows.
  std::string unknown_kind = std::string("\x0a\x02\x08\x63", 4);  // inbound { kind: 99 }
  auto k = decode_forward(unknown_kind);
  ASSERT_FALSE(k);
  EXPECT_NE(k.err().message.find("kind"), std::string::npos);
  EXPECT_FALSE(decode_answer(std::string("\x08\x63", 2)));  // status 99
}

}  // namespace
}  // namespace parley::cluster

namespace parley::cluster {
namespace {

TEST(Codec, ARegionRequestCarriesTheWholeHttpRequest) {
  region_request q;
  q.from_region = "us";
  http::request req;
  req.method = "POST";
  req.target = "/v5.3.0/sessions/s-1/messages?x=1";
  req.headers = {{"X-Org-Id", "acme"}, {"Authorization", "Bearer k"}};
  req.body = std::string("{\"a\":1}\0z", 10);
  req.request_id = "r-1";
  req.remote_address = "10.0.0.9";
  q.http = req;
  auto d = decode_region_request(encode_region_request(q));
  ASSERT_TRUE(d.ok()) << d.err().message;
  EXPECT_EQ(d->from_region, "us");
  ASSERT_TRUE(d->http);
  EXPECT_EQ(d->http->method, "POST");
  EXPECT_EQ(d->http->path, "/v5.3.0/sessions/s-1/messages");
  EXPECT_EQ(d->http->query, "x=1");
  EXPECT_EQ(d->http->headers, req.headers);
  EXPECT_EQ(d->http->body, req.body);
  EXPECT_EQ(d->http->request_id, "r-1");
  EXPECT_EQ(d->http->remote_address, "10.0.0.9");

  region_request t;
  t.tenant_query = "acme";
  auto dt = decode_region_request(encode_region_request(t));
  ASSERT_TRUE(dt.ok());
  EXPECT_EQ(dt->tenant_query, "acme");
  EXPECT_FALSE(dt->http);
  EXPECT_FALSE(decode_region_request(encode_region_request(region_request{})))
      << "a request that asks nothing is refused";
  region_request bad;
  bad.http = http::request{};
  bad.http->method = "GET";
  bad.http->target = "no-slash";
  EXPECT_FALSE(decode_region_request(encode_region_request(bad)));
}

TEST(Codec, ARegionAnswerCarriesTheResponseOrWhyNot) {
  region_answer a;
  a.region = "eu";
  a.http = http::response::json(201, "{}");
  a.http->headers = {{"X-Parley-Node", "eu-1"}};
  auto d = decode_region_answer(encode_region_answer(a));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->region, "eu");
  ASSERT_TRUE(d->http);
  EXPECT_EQ(d->http->status, 201);
  EXPECT_EQ(d->http->content_type, "application/json");
  EXPECT_EQ(d->http->headers, a.http->headers);
  EXPECT_EQ(d->http->body, "{}");
  region_answer e;
  e.error = "its catalog cannot be read";
  e.tenant_home = true;
  auto de = decode_region_answer(encode_region_answer(e));
  ASSERT_TRUE(de.ok());
  EXPECT_EQ(de->error, e.error);
  EXPECT_TRUE(de->tenant_home);
  EXPECT_FALSE(de->http);
  region_answer out_of_range;
  out_of_range.http = http::response::json(700, "");
  EXPECT_FALSE(decode_region_answer(encode_region_answer(out_of_range)));
}

/// What a peer (or anything that reaches the cluster port) sends is untrusted: random
/// bytes and valid messages with bytes flipped must decode to an error or a message,
/// never crash (run under ASan and UBSan in scripts/test). Deterministic seed.
TEST(Codec, RandomAndMutatedBytesNeverCrashTheDecoders) {
  inbound in;
  in.tenant = "acme";
  in.session_id = "s";
  in.text = "hello";
  in.variables["v"].set_number(1);
  const std::string fwd = encode_forward(in, 1, "n");
  turn_outcome out;
  out.st = turn_outcome::status::ok;
  auto r = std::make_shared<bot::v1::TurnResult>();
  r->add_messages()->set_text("hi");
  out.result = r;
  const std::string ans = encode_answer(out);
  region_request rq0;
  rq0.from_region = "us";
  rq0.http = http::request{};
  rq0.http->method = "POST";
  rq0.http->target = "/v5.3.0/bots/b/sessions";
  rq0.http->headers = {{"X-Org-Id", "acme"}};
  rq0.http->body = "{}";
  region_answer ra0;
  ra0.region = "eu";
  ra0.http = http::response::json(200, "{\"ok\":true}");
  const std::string seeds[] = {fwd, ans, encode_region_request(rq0), encode_region_answer(ra0)};
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  std::size_t decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    if (i % 3 == 0) {
      bytes.resize(next() % 64);
      for (auto& c : bytes) c = static_cast<char>(next());
    } else {
      bytes = seeds[next() % 4];
      for (int k = 0, flips = 1 + static_cast<int>(next() % 4); k < flips; ++k)
        bytes[next() % bytes.size()] = static_cast<char>(next());
      if (next() % 4 == 0) bytes.resize(next() % bytes.size());
    }
    auto f = decode_forward(bytes);
    auto a = decode_answer(bytes);
    auto rq = decode_region_request(bytes);
    auto ra = decode_region_answer(bytes);
    if (rq) {
      EXPECT_TRUE(!rq->tenant_query.empty() || rq->http);
      if (rq->http) {
        EXPECT_EQ(rq->http->target.front(), '/');
      }
    } else {
      EXPECT_EQ(rq.err().code, "bad_message");
    }
    if (ra && ra->http) {
      EXPECT_GE(ra->http->status, 100);
      EXPECT_LE(ra->http->status, 599);
    } else if (!ra) {
      EXPECT_EQ(ra.err().code, "bad_message");
    }
    if (f) {
      ++decoded;
      EXPECT_LE(static_cast<int>(f->in.what), static_cast<int>(inbound::last_kind));
    } else {
      EXPECT_EQ(f.err().code, "bad_message");
    }
    if (a) {
      ++decoded;
      EXPECT_LE(static_cast<int>(a->st), static_cast<int>(turn_outcome::last_status));
    } else {
      EXPECT_EQ(a.err().code, "bad_message");
    }
  }
  EXPECT_GT(decoded, 0u);  // the mutations did not all break the framing
}

}  // namespace
}  // namespace parley::cluster
