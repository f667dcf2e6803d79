#include "actors/transcript/catalog_sink.hpp"

#include "src/store/catalog.hpp"

namespace parley::actors {

transcript_writer::write_fn catalog_sink(store::postgres_client& pg) {
  return [p = &pg](const transcript_batch& batch, std::function<void(result<void>)> done) {
    std::vector<store::conversation_record> started;
    std::vector<store::conversation_end> ended;
    for (const auto& e : batch.events) {
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
    store::write_turn_lines(*p, std::move(started), std::move(ended), batch.lines,
                            [done = std::move(done)](result<std::size_t> w) {
                              if (!w) return done(w.err());
                              done(result<void>{});
                            });
  };
}

}  // namespace parley::actors
