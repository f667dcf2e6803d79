#include "src/bot/replay.hpp"

#include <nlohmann/json.hpp>

#include "src/common/strings.hpp"

namespace parley::bot {

namespace {

using json = nlohmann::json;

/// `s` cut to at most `max` bytes, not inside a UTF-8 sequence.
std::string_view bounded(std::string_view s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

const char* reason_name(v1::EndReason r) {
  switch (r) {
    case v1::COMPLETED:
      return "completed";
    case v1::INFINITE_LOOP_DETECTED:
      return "infinite_loop_detected";
    case v1::ERROR:
      return "error";
    case v1::PROGRAM_MISMATCH:
      return "program_mismatch";
    default:
      return "";
  }
}

v1::Status status_of(const std::string& s) {
  for (auto v : {v1::AWAITING_INPUT, v1::AWAITING_ACTION, v1::ENDED, v1::TRANSFERRED})
    if (s == status_name(v)) return v;
  return v1::STATUS_UNSPECIFIED;
}

v1::EndReason reason_of(const std::string& s) {
  for (auto v : {v1::COMPLETED, v1::INFINITE_LOOP_DETECTED, v1::ERROR, v1::PROGRAM_MISMATCH})
    if (s == reason_name(v)) return v;
  return v1::END_REASON_UNSPECIFIED;
}

error bad(const std::string& field, const std::string& what) {
  return error{"bad_record", "replay record field '" + field + "' " + what};
}

/// Appends a later VM segment's result to the turn's (as the conversation actor does).
void append_segment(v1::TurnResult& acc, v1::TurnResult&& r) {
  for (auto& m : *r.mutable_messages()) *acc.add_messages() = std::move(m);
  *acc.mutable_state() = std::move(*r.mutable_state());
  *acc.mutable_action() = std::move(*r.mutable_action());
  acc.set_end_reason(r.end_reason());
}

/// The recorded action answers of a conversation, used at most once each.
class answer_pool {
 public:
  explicit answer_pool(const recorded_conversation& c) {
    for (const auto& t : c.turns)
      for (const auto& a : t.actions) all_.push_back({&a, false});
  }
  /// The answer for the next call of `name`, or null when none is left.
  const recorded_action* take(const std::string& name) {
    for (std::size_t pass = 0; pass < 2; ++pass) {
      for (std::size_t i = pass == 0 ? next_ : 0; i < all_.size(); ++i) {
        if (all_[i].used || all_[i].a->name != name) continue;
        all_[i].used = true;
        next_ = i + 1;
        return all_[i].a;
      }
    }
    return nullptr;
  }

 private:
  struct entry {
    const recorded_action* a;
    bool used;
  };
  std::vector<entry> all_;
  std::size_t next_ = 0;
};

std::vector<std::string> texts(const v1::TurnResult& r) {
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(r.messages_size()));
  for (const auto& m : r.messages()) out.push_back(m.text());
  return out;
}

/// Why a conversation cannot be replayed exactly; empty when it can.
std::string unreplayable(const recorded_conversation& c) {
  if (c.truncated) return "it has more turns than a replay reads";
  if (c.turns.empty()) return "it has no recorded turns";
  for (const auto& t : c.turns) {
    const std::string at = "turn " + std::to_string(t.sequence) + ": ";
    if (!t.has_record) return at + "recorded before turns kept their replay records";
    if (t.variables)
      return at + "the client set variables, whose values the transcript does not keep";
    if (t.op == "set_variables") return at + "a setVariables message, whose values are not kept";
    for (const auto& a : t.actions)
      if (a.truncated)
        return at + "the answer of action '" + a.name + "' was longer than the " +
               std::to_string(max_recorded_body) + " bytes a transcript keeps";
  }
  return {};
}

}  // namespace

const char* status_name(v1::Status s) {
  switch (s) {
    case v1::AWAITING_INPUT:
      return "awaiting_input";
    case v1::AWAITING_ACTION:
      return "awaiting_action";
    case v1::ENDED:
      return "ended";
    case v1::TRANSFERRED:
      return "transferred";
    default:
      return "";
  }
}

void turn_recorder::clear() {
  op_.clear();
  input_.clear();
  variables_ = false;
  cut_ = false;
  actions_.clear();
}

void turn_recorder::enter(std::string_view op, std::string_view input, bool variables) {
  op_.assign(op);
  input_.assign(input);
  variables_ = variables;
}

void turn_recorder::action(std::string_view name, const v1::Input& answer) {
  const auto& r = answer.action();
  if (!actions_.empty()) actions_ += ',';
  actions_ += "{\"name\":";
  common::append_json_string(actions_, name);
  actions_ += r.ok() ? ",\"ok\":true" : ",\"ok\":false";
  actions_ += ",\"status\":" + std::to_string(r.status());
  auto body = bounded(r.body(), max_recorded_body);
  auto err = bounded(r.error(), max_recorded_error);
  actions_ += ",\"body\":";
  common::append_json_string(actions_, body);
  actions_ += ",\"error\":";
  common::append_json_string(actions_, err);
  if (body.size() < r.body().size() || err.size() < r.error().size()) {
    actions_ += ",\"truncated\":true,\"size\":" + std::to_string(r.body().size());
    cut_ = true;
  }
  actions_ += '}';
}

/// Written by hand, not through a JSON DOM: it runs on every turn of the node, where
/// building one would cost more than the turn's VM run.
std::string turn_recorder::finish(std::int64_t now_unix, const v1::TurnResult& result) const {
  std::string out;
  out.reserve(96 + input_.size() + actions_.size());
  out += "{\"v\":1,\"op\":";
  common::append_json_string(out, op_.empty() ? std::string_view("none") : std::string_view(op_));
  out += ",\"input\":";
  common::append_json_string(out, input_);
  if (variables_) out += ",\"variables\":true";
  out += ",\"now\":" + std::to_string(now_unix);
  out += ",\"status\":";
  common::append_json_string(out, status_name(result.state().status()));
  out += ",\"end_reason\":";
  common::append_json_string(
      out, result.state().status() == v1::ENDED ? reason_name(result.end_reason()) : "");
  out += ",\"actions\":[";
  out += actions_;
  out += "]}";
  return out;
}

result<void> parse_record(std::string_view text, recorded_turn& turn) {
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object()) return error{"bad_record", "a replay record must be a JSON object"};
  auto str = [&](const char* k, std::string& into) -> std::optional<error> {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return bad(k, "must be a string");
    into = it->get<std::string>();
    return std::nullopt;
  };
  if (auto e = str("op", turn.op)) return *e;
  if (auto e = str("input", turn.input)) return *e;
  std::string status, reason;
  if (auto e = str("status", status)) return *e;
  if (auto e = str("end_reason", reason)) return *e;
  turn.status = status_of(status);
  turn.end_reason = reason_of(reason);
  auto now = j.find("now");
  if (now == j.end() || !now->is_number_integer()) return bad("now", "must be an integer");
  turn.now_unix = now->get<std::int64_t>();
  turn.variables = j.value("variables", false);
  auto actions = j.find("actions");
  if (actions == j.end() || !actions->is_array()) return bad("actions", "must be an array");
  turn.actions.clear();
  for (std::size_t i = 0; i < actions->size(); ++i) {
    const auto& a = (*actions)[i];
    const std::string f = "actions[" + std::to_string(i) + "]";
    if (!a.is_object()) return bad(f, "must be an object");
    recorded_action r;
    auto name = a.find("name");
    if (name == a.end() || !name->is_string()) return bad(f + ".name", "must be a string");
    r.name = name->get<std::string>();
    r.result.set_ok(a.value("ok", false));
    r.result.set_status(a.value("status", 0));
    r.result.set_body(a.value("body", ""));
    r.result.set_error(a.value("error", ""));
    r.truncated = a.value("truncated", false);
    turn.actions.push_back(std::move(r));
  }
  turn.has_record = true;
  return {};
}

std::string outcome_text(v1::Status status, v1::EndReason reason) {
  switch (status) {
    case v1::AWAITING_INPUT:
      return "awaiting input";
    case v1::AWAITING_ACTION:
      return "awaiting an action";
    case v1::TRANSFERRED:
      return "transferred";
    case v1::ENDED: {
      std::string r = reason_name(reason);
      return r.empty() ? "ended" : "ended (" + r + ")";
    }
    default:
      return "unknown";
  }
}

conversation_replay replay(const program& prog, const recorded_conversation& c,
                           std::size_t max_diffs) {
  conversation_replay out;
  out.session_id = c.session_id;
  out.reason = unreplayable(c);
  if (!out.reason.empty()) {
    out.verdict = replay_verdict::skipped;
    return out;
  }
  answer_pool answers(c);
  v1::State state;
  for (const auto& t : c.turns) {
    const auto now = t.now_unix;
    v1::TurnResult r;
    std::string stop;
    if (t.op == "start") {
      r = start(prog, {}, now);
      if (!t.input.empty() && r.state().status() == v1::AWAITING_INPUT)
        append_segment(r, resume(prog, r.state(), text_input(t.input, now)));
    } else if (t.op == "text") {
      r = resume(prog, state, text_input(t.input, now));
    } else if (t.op == "payload") {
      r = resume(prog, state, payload_input(t.input, now));
    } else if (t.op == "failure") {
      r = resume(prog, state, failure_input(t.input, now));
    } else if (t.op == "timer") {
      const std::int64_t due = next_timer_ms(state);
      if (due > 0 && due < (now + 1) * 1000)
        r = resume(prog, state, timer_input(due, now));
      else
        *r.mutable_state() = state;  // the candidate has no timer due then: it says nothing
    } else if (t.op == "end" || t.op == "none") {
      *r.mutable_state() = state;
      if (t.op == "end") {
        r.mutable_state()->set_status(v1::ENDED);
        r.set_end_reason(v1::COMPLETED);
      }
    } else if (t.op == "redirect" || t.op == "transfer_succeeded" || t.op == "transfer_failed") {
      auto x = t.op == "redirect" ? redirect(prog, state, t.input, now)
               : t.op == "transfer_succeeded"
                   ? transfer_succeeded(prog, state)
                   : transfer_failed(prog, state, t.input == "no_agent", now);
      if (x)
        r = std::move(*x);
      else
        stop = "the candidate refuses the recorded " + t.op + ": " + x.err().message;
    } else {
      stop = "the record names an unknown op '" + t.op + "'";
    }
    while (stop.empty() && r.state().status() == v1::AWAITING_ACTION) {
      const std::string& name = r.action().name();
      const recorded_action* a = answers.take(name);
      if (a == nullptr) {
        stop = "the candidate calls action '" + name +
               "', which the recorded conversation has no answer for";
        break;
      }
      v1::Input in;
      *in.mutable_action() = a->result;
      in.set_now_unix(now);
      append_segment(r, resume(prog, r.state(), in));
    }
    turn_diff d;
    d.turn = t.sequence;
    d.user = t.user.empty() ? t.input : t.user;
    d.recorded = t.replies;
    d.candidate = texts(r);
    d.recorded_outcome = outcome_text(t.status, t.end_reason);
    d.candidate_outcome =
        outcome_text(r.state().status(),
                     r.state().status() == v1::ENDED ? r.end_reason() : v1::END_REASON_UNSPECIFIED);
    d.reason = stop;
    // The bot does not run on a turn handed to an agent: its replies are the agent's.
    if (t.op == "none") d.candidate = d.recorded;
    const bool differs =
        !stop.empty() || d.recorded != d.candidate || d.recorded_outcome != d.candidate_outcome;
    if (differs) {
      out.verdict = replay_verdict::differs;
      if (out.diffs.size() < max_diffs) out.diffs.push_back(std::move(d));
    }
    if (!stop.empty()) {
      out.reason = "turn " + std::to_string(t.sequence) + ": " + stop;
      return out;
    }
    state = std::move(*r.mutable_state());
  }
  return out;
}

}  // namespace parley::bot
