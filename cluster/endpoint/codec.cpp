#include "cluster/endpoint/codec.hpp"

#include "src/proto/cluster.pb.h"

namespace parley::cluster {

using actors::inbound;
using actors::turn_outcome;

std::string encode_forward(const inbound& in, uint32_t hops, const std::string& from) {
  v1::ForwardedTurn f;
  auto* m = f.mutable_inbound();
  m->set_kind(static_cast<int32_t>(in.what));
  m->set_tenant(in.tenant);
  m->set_bot(in.bot);
  m->set_channel(in.channel);
  m->set_session_id(in.session_id);
  m->set_external_key(in.external_key);
  m->set_message_id(in.message_id);
  m->set_sequence_id(in.sequence_id);
  m->set_text(in.text);
  m->set_no_agent(in.no_agent);
  m->set_choice_index(in.choice_index);
  for (const auto& [k, v] : in.variables) (*m->mutable_variables())[k] = v;
  m->set_now_unix(in.now_unix);
  f.set_hops(hops);
  f.set_from_node(from);
  return f.SerializeAsString();
}

result<forwarded> decode_forward(const std::string& bytes) {
  v1::ForwardedTurn f;
  if (!f.ParseFromString(bytes)) return make_error("bad_message", "not a ForwardedTurn");
  const auto& m = f.inbound();
  if (m.kind() < 0 || m.kind() > static_cast<int32_t>(inbound::kind::transfer_failed))
    return make_error("bad_message",
                      "ForwardedTurn.inbound.kind: unknown kind " + std::to_string(m.kind()));
  forwarded out;
  auto& in = out.in;
  in.what = static_cast<inbound::kind>(m.kind());
  in.tenant = m.tenant();
  in.bot = m.bot();
  in.channel = m.channel();
  in.session_id = m.session_id();
  in.external_key = m.external_key();
  in.message_id = m.message_id();
  in.sequence_id = m.sequence_id();
  in.text = m.text();
  in.no_agent = m.no_agent();
  in.choice_index = m.choice_index();
  for (const auto& [k, v] : m.variables()) in.variables.emplace(k, v);
  in.now_unix = m.now_unix();
  out.hops = f.hops();
  out.from = f.from_node();
  return out;
}

std::string encode_answer(const turn_outcome& out) {
  v1::TurnAnswer a;
  a.set_status(static_cast<int32_t>(out.st));
  a.set_message(out.message);
  if (out.result) {
    a.set_has_result(true);
    a.set_result(out.result->SerializeAsString());
  }
  a.set_session_id(out.session_id);
  a.set_bot(out.bot);
  a.set_bot_version(out.bot_version);
  a.set_program_id(out.program_id);
  a.set_served_by(out.served_by);
  return a.SerializeAsString();
}

result<turn_outcome> decode_answer(const std::string& bytes) {
  v1::TurnAnswer a;
  if (!a.ParseFromString(bytes)) return make_error("bad_message", "not a TurnAnswer");
  if (a.status() < 0 || a.status() > static_cast<int32_t>(turn_outcome::status::busy))
    return make_error("bad_message",
                      "TurnAnswer.status: unknown status " + std::to_string(a.status()));
  turn_outcome out;
  out.st = static_cast<turn_outcome::status>(a.status());
  out.message = a.message();
  if (a.has_result()) {
    auto r = std::make_shared<bot::v1::TurnResult>();
    if (!r->ParseFromString(a.result()))
      return make_error("bad_message", "TurnAnswer.result: not a TurnResult");
    out.result = std::move(r);
  }
  out.session_id = a.session_id();
  out.bot = a.bot();
  out.bot_version = a.bot_version();
  out.program_id = a.program_id();
  out.served_by = a.served_by();
  return out;
}

}  // namespace parley::cluster
