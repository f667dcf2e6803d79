// The bot VM: runs conversation turns (loading and inputs: vm_program.cpp).

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>

#include "src/bot/bot.hpp"
#include "src/bot/expr.hpp"
#include "src/bot/nlu.hpp"
#include "src/bot/program_impl.hpp"
#include "src/bot/text.hpp"

namespace parley::bot {

using detail::eval_failure;
using v1::Value;

// ------------------------------------------------------------------ turns

namespace {

constexpr const char* default_fallback_text = "Sorry, I didn't understand that.";
constexpr const char* default_handoff_text = "Let me connect you with someone who can help.";
/// The payload of an answer to "Did you mean one of these?" (ask_which): intent:<name>.
constexpr std::string_view intent_payload_prefix = "intent:";
constexpr const char* default_error_text = "Sorry, something went wrong.";
constexpr const char* default_nudge_text = "Are you still there?";
constexpr const char* default_close_text =
    "I'm closing this conversation for now. Write again any time.";

/// The open question's or menu's step, when the conversation waits at one.
const v1::Step* waiting_step(const program::impl& p, const v1::State& st) {
  if (st.status() != v1::AWAITING_INPUT || st.frames_size() == 0) return nullptr;
  const auto& f = st.frames(st.frames_size() - 1);
  const auto& dl = p.proto.dialogs(static_cast<int>(f.dialog()));
  if (static_cast<int>(f.step()) >= dl.steps_size()) return nullptr;
  const auto& s = dl.steps(static_cast<int>(f.step()));
  if (s.kind() != v1::Step::QUESTION && s.kind() != v1::Step::MENU) return nullptr;
  return &s;
}

/// Sets the timers for where a turn leaves the conversation: those of the question or
/// menu it waits at, from the end of `now`'s second (unix seconds: a timer fires up to a
/// second late, never early); none elsewhere.
void arm_timers(const program::impl& p, v1::State& st, std::int64_t now) {
  st.set_nudge_at_ms(0);
  st.set_close_at_ms(0);
  const auto* s = waiting_step(p, st);
  if (s == nullptr || !s->has_timers()) return;
  const std::int64_t base = (now + 1) * 1000;
  if (s->timers().nudge_after_ms() > 0) st.set_nudge_at_ms(base + s->timers().nudge_after_ms());
  if (s->timers().close_after_ms() > 0) st.set_close_at_ms(base + s->timers().close_after_ms());
}

/// The confidence an intent needs to be trusted: its own threshold, else the bot's.
float threshold_of(const v1::Program& p, int intent) {
  const auto& in = p.intents(intent);
  return in.has_confidence_threshold() ? in.confidence_threshold() : p.confidence_threshold();
}

struct runner {
  const program::impl& p;
  v1::TurnResult r;
  v1::State& st;
  std::size_t steps = 0;
  std::int64_t now = 0;
  bool in_error = false;
  std::uint32_t fallback_streak = 0;  // fallbacks in a row before this turn

  runner(const program::impl& prog, const v1::State& s) : p(prog), st(*r.mutable_state()) {
    st = s;
  }
  runner(const program::impl& prog, v1::State&& s) : p(prog), st(*r.mutable_state()) {
    st.Swap(&s);
  }

  const Value& get(int index) const {
    auto it = std::lower_bound(
        st.vars().begin(), st.vars().end(), index,
        [](const v1::VarSlot& s, int i) { return static_cast<int>(s.index()) < i; });
    if (it != st.vars().end() && static_cast<int>(it->index()) == index) return it->value();
    return p.defaults[static_cast<std::size_t>(index)];
  }

  detail::var_reader reader() const {
    return [this](int i) -> const Value& { return get(i); };
  }

  /// Sets the variables a client may set (declared `client_settable`); returns the
  /// others, and those whose value does not fit (with why), quoted and comma-separated.
  std::string set_by_client(const variables& vars) {
    std::string rejected;
    for (const auto& [name, value] : vars) {
      auto it = std::find(p.names.begin(), p.names.end(), name);
      if (it == p.names.end() ||
          !p.proto.variables(static_cast<int>(it - p.names.begin())).client_settable()) {
        rejected += (rejected.empty() ? "'" : ", '") + name + "'";
        continue;
      }
      try {
        set(static_cast<int>(it - p.names.begin()), value);
      } catch (const eval_failure& ex) {
        rejected += (rejected.empty() ? "'" : ", '") + name + "' (" + ex.message + ")";
      }
    }
    return rejected;
  }

  void set(int index, const Value& raw) {
    const auto& decl = p.proto.variables(index);
    auto v = detail::coerce(raw, decl.type());
    if (!v)
      throw eval_failure{"variable '" + decl.name() + "' cannot hold this value ('" + to_text(raw) +
                         "')"};
    if (v->kind_case() == Value::kText && v->text().size() > max_text_value_bytes)
      throw eval_failure{"value of '" + decl.name() + "' is longer than " +
                         std::to_string(max_text_value_bytes) + " bytes"};
    if (v->kind_case() == Value::kList &&
        static_cast<std::size_t>(v->list().items_size()) > max_list_items)
      throw eval_failure{"list '" + decl.name() + "' has more than " +
                         std::to_string(max_list_items) + " items"};
    if (v->kind_case() == Value::KIND_NOT_SET) v->set_null_value(true);
    auto* vars = st.mutable_vars();
    auto it = std::lower_bound(vars->begin(), vars->end(), index, [](const v1::VarSlot& s, int i) {
      return static_cast<int>(s.index()) < i;
    });
    bool present = it != vars->end() && static_cast<int>(it->index()) == index;
    if (detail::values_equal(*v, p.defaults[static_cast<std::size_t>(index)]) &&
        v->kind_case() == p.defaults[static_cast<std::size_t>(index)].kind_case()) {
      if (present) vars->erase(it);
      return;
    }
    if (present) {
      *it->mutable_value() = std::move(*v);
      return;
    }
    auto pos = it - vars->begin();
    auto* slot = vars->Add();
    slot->set_index(static_cast<std::uint32_t>(index));
    *slot->mutable_value() = std::move(*v);
    // Move the new slot from the end to its sorted position.
    for (auto i = vars->size() - 1; i > pos; --i) vars->SwapElements(i, i - 1);
  }

  void say(std::string text) {
    if (text.empty()) return;
    r.add_messages()->set_text(std::move(text));
  }

  void say_all(const program::impl::step_rt& rt) {
    for (const auto& t : rt.texts) say(detail::render(t, reader()));
  }

  void show_menu(const v1::Step& s, const program::impl::step_rt& rt) {
    auto* m = r.add_messages();
    m->set_text(detail::render(rt.texts[0], reader()));
    for (const auto& o : s.options()) {
      auto* c = m->add_choices();
      c->set_label(o.label());
      c->set_payload(o.payload());
    }
  }

  void start_dialog(int d) {
    st.clear_frames();
    st.set_retries(0);
    auto* f = st.add_frames();
    f->set_dialog(static_cast<std::uint32_t>(d));
    f->set_step(0);
  }

  void end(v1::EndReason why) {
    st.set_status(v1::ENDED);
    st.clear_frames();
    st.set_retries(0);
    r.set_end_reason(why);
  }

  // A runtime error: the bot's error dialog when there is one, else the end.
  void fail(const std::string& why) {
    r.set_error_dialog(true);
    if (!r.error().empty())
      r.set_error(r.error() + "; " + why);
    else
      r.set_error(why);
    if (p.proto.error() >= 0 && !in_error) {
      in_error = true;
      start_dialog(p.proto.error());
      run();
      return;
    }
    say(default_error_text);
    end(v1::ERROR);
  }

  void run() {
    try {
      run_steps();
    } catch (const std::exception& ex) {
      // Nothing in a turn is meant to throw (regexes run on RE2, which does not);
      // should a library still throw (nlohmann's dump() of invalid UTF-8), user
      // data fails the turn like any runtime error instead of crashing the node.
      fail(std::string("internal limit: ") + ex.what());
    } catch (const eval_failure& f) {
      const auto& fr = st.frames_size() ? st.frames(st.frames_size() - 1) : v1::Frame();
      const auto& dl = p.proto.dialogs(static_cast<int>(fr.dialog()));
      std::string where = "dialog '" + dl.name() + "'";
      if (static_cast<int>(fr.step()) < dl.steps_size())
        where += ", line " + std::to_string(dl.steps(static_cast<int>(fr.step())).line());
      fail(f.message + " (" + where + ")");
    }
  }

  void run_steps() {
    st.set_status(v1::AWAITING_INPUT);
    for (;;) {
      if (++steps > max_steps_per_turn) {
        r.set_error("more than " + std::to_string(max_steps_per_turn) +
                    " steps in one turn: InfiniteLoopDetected");
        end(v1::INFINITE_LOOP_DETECTED);
        return;
      }
      if (st.frames_size() == 0) return;  // idle: wait for free input
      auto* f = st.mutable_frames(st.frames_size() - 1);
      const auto& dl = p.proto.dialogs(static_cast<int>(f->dialog()));
      if (static_cast<int>(f->step()) >= dl.steps_size()) {
        st.mutable_frames()->RemoveLast();
        continue;
      }
      const auto& s = dl.steps(static_cast<int>(f->step()));
      const auto& rt = p.steps[f->dialog()][f->step()];
      switch (s.kind()) {
        case v1::Step::MESSAGE:
          say_all(rt);
          f->set_step(f->step() + 1);
          break;
        case v1::Step::QUESTION:
          say(detail::render(rt.texts[0], reader()));
          st.set_retries(0);
          return;
        case v1::Step::MENU:
          show_menu(s, rt);
          st.set_retries(0);
          return;
        case v1::Step::SET:
          for (const auto& [var, e] : rt.assign) set(var, detail::eval(*e, reader()));
          f->set_step(f->step() + 1);
          break;
        case v1::Step::BRANCH:
          f->set_step(detail::truthy(detail::eval(*rt.expr, reader()))
                          ? f->step() + 1
                          : static_cast<std::uint32_t>(s.target()));
          break;
        case v1::Step::JUMP:
          f->set_step(static_cast<std::uint32_t>(s.target()));
          break;
        case v1::Step::GOTO:
          f->set_dialog(static_cast<std::uint32_t>(s.target()));
          f->set_step(0);
          break;
        case v1::Step::CALL: {
          f->set_step(f->step() + 1);
          if (st.frames_size() >= 32) throw eval_failure{"calls nested more than 32 deep"};
          auto* n = st.add_frames();
          n->set_dialog(static_cast<std::uint32_t>(s.target()));
          n->set_step(0);
          break;
        }
        case v1::Step::RETURN:
          st.mutable_frames()->RemoveLast();
          break;
        case v1::Step::END:
          say_all(rt);
          end(v1::COMPLETED);
          return;
        case v1::Step::TRANSFER: {
          say_all(rt);
          auto* t = r.mutable_transfer();
          t->set_queue(s.queue());
          for (const auto& x : s.targets()) t->add_targets(x);
          st.set_status(v1::TRANSFERRED);
          st.clear_frames();
          st.set_retries(0);
          return;
        }
        case v1::Step::ACTION: {
          auto* a = r.mutable_action();
          a->set_name(s.action_name());
          a->set_method(s.method());
          // Only the placeholders the bot file wrote are marked for
          // resolve_secrets; "{{secret." text from a variable stays literal.
          std::vector<detail::secret_mark> marks;
          auto refs = [&](v1::SecretRef::Field field, int header) {
            for (auto& m : marks) {
              auto* ref = a->add_secrets();
              ref->set_field(field);
              ref->set_header(header);
              ref->set_offset(static_cast<std::uint32_t>(m.offset));
              ref->set_name(std::move(m.name));
            }
            marks.clear();
          };
          a->set_url(detail::render(rt.url, reader(), &marks));
          refs(v1::SecretRef::URL, 0);
          for (int i = 0; i < s.headers_size(); ++i) {
            auto* h = a->add_headers();
            h->set_name(s.headers(i).name());
            h->set_value(detail::render(rt.headers[static_cast<std::size_t>(i)], reader(), &marks));
            refs(v1::SecretRef::HEADER, i);
          }
          if (!rt.body.empty()) {
            auto body = nlohmann::json::object();
            for (const auto& [k, e] : rt.body)
              body[k] = detail::to_json(detail::eval(*e, reader()));
            a->set_body(body.dump());
          }
          a->set_timeout_ms(s.timeout_ms());
          st.set_status(v1::AWAITING_ACTION);
          return;
        }
        default:
          throw eval_failure{"unknown step kind"};
      }
    }
  }

  // ---------------------------------------------------------- input matching

  std::string raw, norm;
  bool nlu_done = false;
  int intent = -1;
  int runner_up = -1;  // an intent as likely as `intent`: the bot asks which (ask_which)

  void analyse(std::string_view text) {
    raw = std::string(detail::utf8_prefix(text, max_input_bytes));
    norm = detail::normalize(raw);
    // The answer to ask_which(): the intent it names, as sure as an exact utterance.
    if (raw.rfind(intent_payload_prefix, 0) == 0) {
      std::string_view name = std::string_view(raw).substr(intent_payload_prefix.size());
      for (int i = 0; i < p.proto.intents_size(); ++i)
        if (p.proto.intents(i).name() == name) {
          auto* s = r.add_intents();
          s->set_name(p.proto.intents(i).name());
          s->set_confidence(1.0f);
          intent = i;
          r.set_matched_by("disambiguation");
          return;
        }
    }
    int ex = p.nlu.exact(norm);
    auto scores = p.nlu.classify(norm, 3);
    if (ex >= 0) {
      auto* s = r.add_intents();
      s->set_name(p.proto.intents(ex).name());
      s->set_confidence(1.0f);
      intent = ex;
      r.set_matched_by("exact");
    }
    for (const auto& sc : scores) {
      if (sc.intent == ex) continue;
      auto* s = r.add_intents();
      s->set_name(p.proto.intents(sc.intent).name());
      s->set_confidence(sc.confidence);
    }
    if (ex < 0 && !scores.empty() &&
        scores[0].confidence >= threshold_of(p.proto, scores[0].intent)) {
      intent = scores[0].intent;
      r.set_matched_by("intent");
      if (scores.size() > 1 && p.proto.ambiguity_threshold() > 0 &&
          scores[0].confidence - scores[1].confidence < p.proto.ambiguity_threshold() &&
          p.proto.intents(scores[0].intent).dialog() >= 0 &&
          p.proto.intents(scores[1].intent).dialog() >= 0)
        runner_up = scores[1].intent;
    }
    detail::entity_hit hit;
    for (std::size_t i = 0; i < p.extractors.size(); ++i) {
      if (p.proto.entities(static_cast<int>(i)).system() == v1::SYS_TEXT) continue;
      if (p.extractors[i].extract(raw, norm, now, hit)) {
        auto* e = r.add_entities();
        e->set_entity(p.proto.entities(static_cast<int>(i)).name());
        e->set_value(hit.value);
        e->set_text(hit.text);
      }
    }
  }

  /// The best two intents were too close to choose (ambiguity_threshold): asks which
  /// one the user meant, as a menu of the two whose answers are `intent:<name>`
  /// payloads (or the label, an utterance of the intent), and leaves the conversation
  /// where it was. False when there was no doubt.
  bool ask_which() {
    if (intent < 0 || runner_up < 0) return false;
    r.set_matched_by("ambiguous");
    auto* m = r.add_messages();
    m->set_text("Did you mean one of these?");
    for (int i : {intent, runner_up}) {
      const auto& in = p.proto.intents(i);
      std::string label = in.utterances_size() > 0 ? in.utterances(0) : in.name();
      if (!label.empty() && label[0] >= 'a' && label[0] <= 'z') label[0] = char(label[0] - 32);
      auto* c = m->add_choices();
      c->set_label(std::move(label));
      c->set_payload(std::string(intent_payload_prefix) + in.name());
    }
    return true;
  }

  // Starts the dialog of the recognised intent; false when there is none.
  bool switch_to_intent() {
    if (intent < 0) return false;
    int d = p.proto.intents(intent).dialog();
    if (d < 0) return false;
    start_dialog(d);
    return true;
  }

  /// Counts this turn's fallback; true when it is the `handoff_after_fallbacks`-th in a
  /// row, and the bot hands over instead (the count starts again).
  bool count_fallback() {
    st.set_fallbacks_in_row(fallback_streak + 1);
    const auto limit = p.proto.handoff_after_fallbacks();
    if (limit == 0 || st.fallbacks_in_row() < limit) return false;
    st.set_fallbacks_in_row(0);
    return true;
  }

  /// Hands over after too many fallbacks: the bot's `handoff` dialog (true: the caller
  /// runs it), or a transfer with the default message and no queue.
  bool hand_off() {
    if (p.proto.handoff() >= 0) {
      start_dialog(p.proto.handoff());
      return true;
    }
    say(default_handoff_text);
    r.mutable_transfer();
    st.set_status(v1::TRANSFERRED);
    st.clear_frames();
    st.set_retries(0);
    return false;
  }

  /// The input matched nothing: the fallback dialog (true: the caller runs it), the
  /// default answer, or the handoff when fallbacks came too often in a row.
  bool fallback() {
    r.set_matched_by("fallback");
    if (count_fallback()) return hand_off();
    if (p.proto.fallback() >= 0) {
      start_dialog(p.proto.fallback());
      return true;
    }
    say(default_fallback_text);
    return false;
  }

  // The current question or menu was not answered: re-prompt, or give up.
  void retry(const v1::Step& s, const program::impl::step_rt& rt) {
    st.set_retries(st.retries() + 1);
    if (st.retries() <= s.retries()) {
      say(detail::render(rt.texts[1], reader()));
      return;
    }
    st.set_retries(0);
    if (s.target() >= 0) {
      start_dialog(s.target());
    } else {
      auto* f = st.mutable_frames(st.frames_size() - 1);
      f->set_step(f->step() + 1);
    }
    run();
  }

  void on_text(std::string_view text, bool is_payload) {
    analyse(text);
    if (st.frames_size() == 0) {  // idle
      if (ask_which()) return;
      if (switch_to_intent() || fallback()) run();
      return;
    }
    auto* f = st.mutable_frames(st.frames_size() - 1);
    const auto& s =
        p.proto.dialogs(static_cast<int>(f->dialog())).steps(static_cast<int>(f->step()));
    const auto& rt = p.steps[f->dialog()][f->step()];
    if (s.kind() == v1::Step::MENU) {
      int chosen = -1;
      for (int i = 0; i < s.options_size() && chosen < 0; ++i) {
        if (is_payload ? raw == s.options(i).payload()
                       : (norm == rt.option_norm[static_cast<std::size_t>(i)] ||
                          raw == s.options(i).payload()))
          chosen = i;
      }
      if (chosen < 0 && !norm.empty() && norm.size() <= 3 &&
          std::all_of(norm.begin(), norm.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        int n = std::atoi(norm.c_str());
        if (n >= 1 && n <= s.options_size()) chosen = n - 1;
      }
      if (chosen >= 0) {
        r.set_matched_by("menu");
        st.set_retries(0);
        const auto& o = s.options(chosen);
        try {
          for (const auto& [var, e] : rt.option_assign[static_cast<std::size_t>(chosen)])
            set(var, detail::eval(*e, reader()));
        } catch (const eval_failure& ex) {
          fail(ex.message);
          return;
        }
        f->set_step(f->step() + 1);
        if (o.go_to() >= 0) {
          if (o.call()) {
            auto* n = st.add_frames();
            n->set_dialog(static_cast<std::uint32_t>(o.go_to()));
            n->set_step(0);
          } else {
            f->set_dialog(static_cast<std::uint32_t>(o.go_to()));
            f->set_step(0);
          }
        }
        run();
        return;
      }
      if (ask_which()) return;
      if (switch_to_intent()) {
        run();
        return;
      }
      // Einstein's order: menu, exact utterance, intent model, then the fallback
      // dialog. Without one, say so and show the menu again.
      if (fallback()) {
        run();
        return;
      }
      if (st.status() != v1::TRANSFERRED) show_menu(s, rt);
      return;
    }
    if (s.kind() == v1::Step::QUESTION) {
      detail::entity_hit hit;
      if (p.extractors[static_cast<std::size_t>(s.entity())].extract(raw, norm, now, hit)) {
        r.set_matched_by("entity");
        if (p.proto.entities(s.entity()).system() == v1::SYS_TEXT) {
          auto* e = r.add_entities();
          e->set_entity("text");
          e->set_value(hit.value);
          e->set_text(hit.text);
        }
        Value v;
        v.set_text(hit.value);
        try {
          set(s.var(), v);
        } catch (const eval_failure& ex) {
          fail(ex.message);
          return;
        }
        st.set_retries(0);
        f->set_step(f->step() + 1);
        run();
        return;
      }
      if (ask_which()) return;
      if (switch_to_intent()) {
        run();
        return;
      }
      r.set_matched_by("");
      retry(s, rt);
      return;
    }
    fail("the conversation is waiting for input at a step that takes none");
  }

  const v1::Step* waiting_step() const { return bot::waiting_step(p, st); }
  void arm_timers() { bot::arm_timers(p, st, now); }

  /// A timer input (see bot::timer_input). False: stale, nothing changed.
  bool on_timer(std::int64_t due) {
    const auto* s = waiting_step();
    if (s == nullptr || due <= 0 || (due != st.nudge_at_ms() && due != st.close_at_ms()))
      return false;
    // Past its close too (the node was down): closes without nudging first.
    const bool closing =
        due == st.close_at_ms() || (st.close_at_ms() > 0 && now * 1000 >= st.close_at_ms());
    const auto& t = s->timers();
    const auto& rt =
        p.steps[st.frames(st.frames_size() - 1).dialog()][st.frames(st.frames_size() - 1).step()];
    if (!closing) {
      r.set_timer("nudge");
      st.set_nudge_at_ms(0);
      say(t.nudge().empty() ? std::string(default_nudge_text) : render_timer_text(rt.nudge));
      return true;
    }
    r.set_timer("close");
    st.set_nudge_at_ms(0);
    st.set_close_at_ms(0);
    st.set_retries(0);
    if (t.on_close() >= 0 && t.on_close() < p.proto.dialogs_size()) {
      start_dialog(t.on_close());
      run();
      arm_timers();
      return true;
    }
    say(t.close_message().empty() ? std::string(default_close_text)
                                  : render_timer_text(rt.close_message));
    end(v1::COMPLETED);
    return true;
  }

  std::string render_timer_text(const detail::parsed_template& t) {
    try {
      return detail::render(t, reader());
    } catch (const eval_failure& f) {
      r.set_error(f.message);
      return {};
    }
  }

  void on_action(const v1::ActionResult& a) {
    auto* f = st.mutable_frames(st.frames_size() - 1);
    const auto& s =
        p.proto.dialogs(static_cast<int>(f->dialog())).steps(static_cast<int>(f->step()));
    std::string problem;
    nlohmann::json body;
    if (!a.ok())
      problem = "action '" + s.action_name() + "' failed: " + a.error();
    else if (a.status() < 200 || a.status() > 299)
      problem = "action '" + s.action_name() + "' answered HTTP " + std::to_string(a.status());
    else if (!a.body().empty()) {
      body = nlohmann::json::parse(a.body(), nullptr, false);
      if (body.is_discarded()) problem = "action '" + s.action_name() + "' answered invalid JSON";
    }
    try {
      if (s.status_var() >= 0 && a.ok()) {
        Value sv;
        sv.set_number(a.status());
        set(s.status_var(), sv);
      }
      if (problem.empty()) {
        for (const auto& m : s.result()) {
          const nlohmann::json* cur = &body;
          const std::string path = detail::normalize_path(m.path());
          for (auto part : detail::words(path)) {
            if (cur->is_object()) {
              auto it = cur->find(std::string(part));
              cur = it == cur->end() ? nullptr : &*it;
            } else if (cur->is_array()) {
              char* endp = nullptr;
              std::string ps(part);
              auto idx = std::strtoul(ps.c_str(), &endp, 10);
              cur = (*endp == '\0' && idx < cur->size()) ? &(*cur)[idx] : nullptr;
            } else {
              cur = nullptr;
            }
            if (!cur) break;
          }
          Value v = cur ? detail::from_json(*cur, 0) : Value();
          if (!cur) v.set_null_value(true);
          set(m.var(), v);
        }
      }
    } catch (const eval_failure& ex) {
      problem = "action '" + s.action_name() + "': " + ex.message;
    }
    if (problem.empty()) {
      f->set_step(f->step() + 1);
      run();
      return;
    }
    r.set_error(problem);
    r.set_action_failed(true);
    if (s.target() >= 0) {
      start_dialog(s.target());
      run();
      return;
    }
    fail(problem);
  }
};

}  // namespace

v1::TurnResult start(const program& prog, const variables& vars, std::int64_t now_unix) {
  const auto& p = prog.internals();
  v1::State s;
  s.set_program_id(p.proto.id());
  runner run(p, s);
  run.now = now_unix;
  auto rejected = run.set_by_client(vars);
  if (!rejected.empty()) run.r.set_error("variables not settable by the client: " + rejected);
  int first = p.proto.welcome() >= 0 ? p.proto.welcome() : p.proto.main_menu();
  if (first >= 0) run.start_dialog(first);
  run.run();
  run.arm_timers();
  run.st.set_turn(1);
  return std::move(run.r);
}

result<v1::TurnResult> set_variables(const program& prog, const v1::State& state,
                                     const variables& vars) {
  const auto& p = prog.internals();
  if (state.program_id() != p.proto.id())
    return make_error("program_mismatch", "the state belongs to program '" + state.program_id() +
                                              "', not '" + p.proto.id() + "'");
  if (state.status() == v1::ENDED || state.status() == v1::TRANSFERRED)
    return make_error("session_ended", "the session is over");
  runner run(p, state);
  auto rejected = run.set_by_client(vars);
  if (!rejected.empty())
    return make_error("invalid_argument", "not settable by the client: " + rejected);
  run.st.set_turn(state.turn() + 1);
  return std::move(run.r);
}

namespace {

error not_transferred() {
  return make_error("not_transferred", "the bot has not handed this conversation to an agent");
}

}  // namespace

result<v1::TurnResult> redirect(const program& prog, const v1::State& state,
                                std::string_view dialog, std::int64_t now_unix) {
  if (state.status() == v1::ENDED) return make_error("session_ended", "the conversation has ended");
  if (state.status() == v1::TRANSFERRED)
    return make_error("awaiting_transfer", "the conversation waits for its transfer to an agent");
  const auto& p = prog.internals();
  int d = -1;
  for (int i = 0; i < p.proto.dialogs_size() && d < 0; ++i)
    if (p.proto.dialogs(i).name() == dialog) d = i;
  if (d < 0)
    return make_error("unknown_dialog",
                      "the bot has no dialog named '" + std::string(dialog) + "'");
  runner run(p, state);
  run.now = now_unix;
  run.st.set_status(v1::AWAITING_INPUT);
  run.st.set_turn(state.turn() + 1);
  run.start_dialog(d);
  run.run();
  run.arm_timers();
  return std::move(run.r);
}

result<v1::TurnResult> transfer_succeeded(const program& prog, const v1::State& state) {
  if (state.status() != v1::TRANSFERRED) return not_transferred();
  runner run(prog.internals(), state);
  run.st.set_turn(state.turn() + 1);
  run.end(v1::COMPLETED);
  return std::move(run.r);
}

result<v1::TurnResult> transfer_failed(const program& prog, const v1::State& state, bool no_agent,
                                       std::int64_t now_unix) {
  if (state.status() != v1::TRANSFERRED) return not_transferred();
  const auto& p = prog.internals();
  runner run(p, state);
  run.now = now_unix;
  run.st.set_status(v1::AWAITING_INPUT);
  run.st.set_turn(state.turn() + 1);
  run.say(no_agent ? "Sorry, no agent is available right now."
                   : "Sorry, we could not connect you with an agent.");
  if (p.proto.main_menu() >= 0) {
    run.start_dialog(p.proto.main_menu());
    run.run();
  }
  run.arm_timers();
  return std::move(run.r);
}

namespace {

/// A turn from `run.st`, the state as it was until this changes it (see run_turn).
v1::TurnResult run_input(runner& run, const v1::Input& input) {
  const auto& p = run.p;
  const v1::State& state = run.st;
  run.now = input.now_unix();
  if (state.program_id() != p.proto.id()) {
    run.r.set_error("the state belongs to program '" + state.program_id() + "', not '" +
                    p.proto.id() + "'");
    run.end(v1::PROGRAM_MISMATCH);
    return std::move(run.r);
  }
  run.st.set_turn(state.turn() + 1);
  // A state that does not fit this program (corrupt snapshot) is a failure.
  for (const auto& f : state.frames())
    if (static_cast<int>(f.dialog()) >= p.proto.dialogs_size() ||
        static_cast<int>(f.step()) > p.proto.dialogs(static_cast<int>(f.dialog())).steps_size()) {
      run.r.set_error("the state does not fit the program");
      run.end(v1::ERROR);
      return std::move(run.r);
    }
  for (const auto& v : state.vars())
    if (static_cast<int>(v.index()) >= p.proto.variables_size()) {
      run.r.set_error("the state does not fit the program");
      run.end(v1::ERROR);
      return std::move(run.r);
    }
  if (input.kind_case() == v1::Input::kTimerMs) {
    // A stale timer leaves the state as it was, its turn count too: nothing to commit.
    if (!run.on_timer(input.timer_ms())) run.st.set_turn(run.st.turn() - 1);
    return std::move(run.r);
  }
  switch (state.status()) {
    case v1::ENDED:
    case v1::TRANSFERRED:
      run.r.set_error("the session is over");
      return std::move(run.r);
    default:
      break;
  }
  if (input.kind_case() == v1::Input::kFailure) {
    run.fail(input.failure());
    return std::move(run.r);
  }
  if (state.status() == v1::AWAITING_ACTION) {
    if (input.kind_case() != v1::Input::kAction || state.frames_size() == 0) {
      run.r.set_error("waiting for the result of an action");
      return std::move(run.r);
    }
    run.on_action(input.action());
    return std::move(run.r);
  }
  // Only fallbacks in a row count towards the handoff: any other turn starts again.
  run.fallback_streak = state.fallbacks_in_row();
  run.st.set_fallbacks_in_row(0);
  try {
    if (input.kind_case() == v1::Input::kText)
      run.on_text(input.text(), false);
    else if (input.kind_case() == v1::Input::kPayload)
      run.on_text(input.payload(), true);
    else
      run.r.set_error("waiting for the user's message, not an action result");
  } catch (const std::exception& ex) {
    // Matching runs before any step, outside run()'s own catch: should it
    // throw, the turn fails like any runtime error.
    run.fail(std::string("internal limit: ") + ex.what());
  }
  return std::move(run.r);
}

/// A turn; any but a timer's (re)arms the timers of the question or menu the
/// conversation is left waiting at (the user spoke: the wait starts again).
v1::TurnResult run_turn(runner& run, const v1::Input& input) {
  const auto p = &run.p;
  auto r = run_input(run, input);
  if (input.kind_case() != v1::Input::kTimerMs)
    arm_timers(*p, *r.mutable_state(), input.now_unix());
  return r;
}

}  // namespace

v1::TurnResult resume(const program& prog, const v1::State& state, const v1::Input& input) {
  runner run(prog.internals(), state);
  return run_turn(run, input);
}

v1::TurnResult resume(const program& prog, v1::State&& state, const v1::Input& input) {
  runner run(prog.internals(), std::move(state));
  return run_turn(run, input);
}
}  // namespace parley::bot
