#include "actors/transcript/catalog_sink.hpp"

#include "src/store/catalog.hpp"

namespace parley::actors {

transcript_writer::write_fn catalog_sink(store::postgres_client& pg) {
  return [p = &pg](const std::vector<transcript_row>& rows, const std::vector<conversation_event>& events,
                   std::function<void(result<void>)> done) {
    std::vector<store::transcript_row> out;
    out.reserve(rows.size());
    for (const auto& r : rows)
      out.push_back({r.tenant, r.session_id, static_cast<int64_t>(r.sequence), r.direction, r.idx, r.text,
                     r.payload, r.created_unix_ms});
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
    store::write_turn_records(*p, std::move(started), std::move(ended), std::move(out),
                              [done = std::move(done)](result<std::size_t> w) {
                                if (!w) return done(w.err());
                                done(result<void>{});
                              });
  };
}

}  // namespace parley::actors
