#pragma once
/// The transcript writer's Postgres side: a transcript_writer::write_fn that stores
/// each batch with store::write_turn_lines (conversation starts and ends, then the
/// turns) in one transaction. parleyd and bench/transcripts use this one function, so
/// the benchmark measures the code parleyd runs.

#include "actors/transcript/transcript_writer.hpp"

namespace parley::store {
class postgres_client;
}

namespace parley::actors {

/// `pg` must outlive the writer that calls the returned function.
transcript_writer::write_fn catalog_sink(store::postgres_client& pg);

}  // namespace parley::actors
