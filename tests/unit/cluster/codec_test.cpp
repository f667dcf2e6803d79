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
