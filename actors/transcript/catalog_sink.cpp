#include "actors/transcript/catalog_sink.hpp"

#include "src/store/catalog/transcripts.hpp"

namespace parley::actors {

transcript_writer::write_fn catalog_sink(store::postgres_client& pg) {
  return [p = &pg](const transcript_batch& batch, std::function<void(result<void>)> done) {
    store::run_job(*p, store::write_turn_lines(batch.events, batch.lines),
                   [done = std::move(done)](result<std::size_t> w) {
                     if (!w) return done(w.err());
                     done(result<void>{});
                   });
  };
}

}  // namespace parley::actors
