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
  m->set_transcript_note(in.transcript_note);
  m->set_timer_due_ms(in.timer_due_ms);
  f.set_hops(hops);
  f.set_from_node(from);
  return f.SerializeAsString();
}

result<forwarded> decode_forward(const std::string& bytes) {
  v1::ForwardedTurn f;
  if (!f.ParseFromString(bytes)) return make_error("bad_message", "not a ForwardedTurn");
  const auto& m = f.inbound();
  if (m.kind() < 0 || m.kind() > static_cast<int32_t>(inbound::last_kind))
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
  in.transcript_note = m.transcript_note();
  in.timer_due_ms = m.timer_due_ms();
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
  if (a.status() < 0 || a.status() > static_cast<int32_t>(turn_outcome::last_status))
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

namespace {

template <class Message>
void put_headers(const http::header_list& in, Message& out) {
  for (const auto& [name, value] : in) {
    auto* h = out.add_headers();
    h->set_name(name);
    h->set_value(value);
  }
}

template <class Message>
http::header_list get_headers(const Message& in) {
  http::header_list out;
  out.reserve(static_cast<std::size_t>(in.headers_size()));
  for (const auto& h : in.headers()) out.emplace_back(h.name(), h.value());
  return out;
}

}  // namespace

std::string encode_region_request(const region_request& r) {
  v1::RegionRequest m;
  m.set_from_region(r.from_region);
  m.set_tenant_query(r.tenant_query);
  if (r.http) {
    auto* h = m.mutable_http();
    h->set_method(r.http->method);
    h->set_target(r.http->target);
    put_headers(r.http->headers, *h);
    h->set_body(r.http->body);
    h->set_request_id(r.http->request_id);
    h->set_remote_address(r.http->remote_address);
  }
  return m.SerializeAsString();
}

result<region_request> decode_region_request(const std::string& bytes) {
  v1::RegionRequest m;
  if (!m.ParseFromString(bytes)) return make_error("bad_message", "not a RegionRequest");
  region_request out;
  out.from_region = m.from_region();
  out.tenant_query = m.tenant_query();
  if (m.has_http()) {
    const auto& h = m.http();
    if (h.method().empty()) return make_error("bad_message", "RegionRequest.http.method: empty");
    if (h.target().empty() || h.target()[0] != '/')
      return make_error("bad_message", "RegionRequest.http.target: not a path");
    http::request req;
    req.method = h.method();
    req.target = h.target();
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    req.headers = get_headers(h);
    req.body = h.body();
    req.request_id = h.request_id();
    req.remote_address = h.remote_address();
    out.http = std::move(req);
  }
  if (out.tenant_query.empty() && !out.http)
    return make_error("bad_message", "RegionRequest: neither tenant_query nor http");
  return out;
}

std::string encode_region_answer(const region_answer& a) {
  v1::RegionAnswer m;
  m.set_region(a.region);
  m.set_tenant_home(a.tenant_home);
  m.set_error(a.error);
  if (a.http) {
    auto* h = m.mutable_http();
    h->set_status(a.http->status);
    h->set_content_type(a.http->content_type);
    put_headers(a.http->headers, *h);
    h->set_body(a.http->body);
  }
  return m.SerializeAsString();
}

result<region_answer> decode_region_answer(const std::string& bytes) {
  v1::RegionAnswer m;
  if (!m.ParseFromString(bytes)) return make_error("bad_message", "not a RegionAnswer");
  region_answer out;
  out.region = m.region();
  out.tenant_home = m.tenant_home();
  out.error = m.error();
  if (m.has_http()) {
    const auto& h = m.http();
    if (h.status() < 100 || h.status() > 599)
      return make_error("bad_message", "RegionAnswer.http.status: " + std::to_string(h.status()) +
                                           " out of range");
    http::response res;
    res.status = h.status();
    res.content_type = h.content_type();
    res.headers = get_headers(h);
    res.body = h.body();
    out.http = std::move(res);
  }
  return out;
}

}  // namespace parley::cluster
