#include "actors/transcript/catalog_sink.hpp"

#include <optional>

#include "src/store/catalog.hpp"

namespace parley::actors {

namespace {

/// The batch as one record per turn, when its rows have the shape the conversation
/// actor appends: the rows of a turn adjacent, one tenant, at most one inbound row
/// (idx 0), replies idx 0, 1, 2, ... in order. Nullopt for any other shape, which
/// goes through the per-message path and its checks instead.
std::optional<std::vector<store::transcript_turn>> as_turns(
    const std::vector<transcript_row>& rows) {
  std::vector<store::transcript_turn> turns;
  turns.reserve(rows.size() / 2 + 1);
  bool payloads = false;
  for (const auto& r : rows) {
    auto seq = static_cast<int64_t>(r.sequence);
    if (turns.empty() || turns.back().sequence != seq || turns.back().session_id != r.session_id) {
      turns.emplace_back();
      auto& t = turns.back();
      t.tenant = r.tenant;
      t.session_id = r.session_id;
      t.sequence = seq;
      t.at_ms = r.created_unix_ms;
    }
    auto& t = turns.back();
    if (t.tenant != r.tenant) return std::nullopt;
    if (r.created_unix_ms != 0 && (t.at_ms == 0 || r.created_unix_ms < t.at_ms))
      t.at_ms = r.created_unix_ms;
    if (r.direction == "in") {
      if (r.idx != 0 || t.inbound) return std::nullopt;
      t.inbound = r.text;
      t.inbound_payload = r.payload;
    } else if (r.direction == "out") {
      if (r.idx < 0 || static_cast<std::size_t>(r.idx) != t.replies.size()) return std::nullopt;
      t.replies.push_back(r.text);
      if (!r.payload.empty()) payloads = true;
    } else {
      return std::nullopt;
    }
  }
  // Reply payloads are rare (the conversation actor writes none): a second pass
  // only for a batch that has one.
  if (payloads) {
    std::size_t k = 0;
    for (const auto& r : rows) {
      while (turns[k].sequence != static_cast<int64_t>(r.sequence) ||
             turns[k].session_id != r.session_id)
        ++k;
      if (r.direction == "out") {
        turns[k].reply_payloads.resize(turns[k].replies.size());
        turns[k].reply_payloads[static_cast<std::size_t>(r.idx)] = r.payload;
      }
    }
  }
  return turns;
}

}  // namespace

transcript_writer::write_fn catalog_sink(store::postgres_client& pg) {
  return [p = &pg](const transcript_batch& batch, std::function<void(result<void>)> done) {
    const auto& rows = batch.rows;
    const auto& events = batch.events;
    std::vector<store::conversation_record> started;
    std::vector<store::conversation_end> ended;
    for (const auto& e : events) {
      if (e.ended) {
        ended.push_back({e.tenant, e.session_id, e.reason});
      } else {
        store::conversation_record c;
        c.tenant = e.tenant;
        c.session_id = e.session_id;
        c.bot = e.bot;
        c.version = static_cast<int>(e.version);
        c.channel = e.channel;
        c.external_key = e.external_key;
        started.push_back(std::move(c));
      }
    }
    auto finish = [done = std::move(done)](result<std::size_t> w) {
      if (!w) return done(w.err());
      done(result<void>{});
    };
    // A batch holds whole turns (the runtime's, formatted already: one COPY) or rows.
    if (!batch.lines->empty()) {
      store::write_turn_lines(*p, std::move(started), std::move(ended), batch.lines,
                              std::move(finish));
      return;
    }
    // One record per turn: the catalog needs no regrouping of per-message rows.
    if (auto turns = as_turns(rows)) {
      store::write_turn_records(*p, std::move(started), std::move(ended), std::move(*turns),
                                std::move(finish));
      return;
    }
    std::vector<store::transcript_row> out;
    out.reserve(rows.size());
    for (const auto& r : rows)
      out.push_back({r.tenant, r.session_id, static_cast<int64_t>(r.sequence), r.direction, r.idx,
                     r.text, r.payload, r.created_unix_ms});
    store::write_turn_records(*p, std::move(started), std::move(ended), std::move(out),
                              std::move(finish));
  };
}

}  // namespace parley::actors
