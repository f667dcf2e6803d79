#pragma once
/// Transcripts: one row per turn in transcript_turns
/// (migrations/0004_transcript_turns.sql), written whole as COPY lines that the
/// conversation formats (transcript_line_builder) and read back as messages.
///
/// Each function makes a job (job.hpp): run it with run_job or run_job_sync. Errors:
/// those of job.hpp plus the codes named per function.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/store/catalog/conversations.hpp"
#include "src/store/catalog/job.hpp"

namespace parley::store {

/// One inbound or outbound message of a turn, as read back: a turn's inbound message
/// is (sequence, "in", 0); its replies are (sequence, "out", 0..n-1).
///
/// Storage: one row per turn in transcript_turns (migrations/0004_transcript_turns.sql),
/// keyed by (session_id, sequence), written whole as a transcript_line; transcript()
/// expands each turn back into its messages, which share the turn's tenant and time.
struct transcript_row {
  std::string tenant;
  std::string session_id;
  std::int64_t sequence = 0;
  std::string direction;  ///< "in" or "out"
  int idx = 0;
  std::string text;
  std::string payload_json;  ///< a JSON document, or empty for none
  std::int64_t at_ms = 0;    ///< the turn's time
};

/// One whole turn of a transcript, already formatted as a line of transcript_turns'
/// COPY text (transcript_line_builder) on the thread that has the turn, so that the
/// transcript writer and the Postgres worker only move and concatenate bytes.
struct transcript_line {
  std::string copy;          ///< the COPY text line, without its newline
  std::size_t messages = 0;  ///< the inbound message (0 or 1) and the replies
  /// Set by a writer sending the line again after a failed write (whose outcome is
  /// unknown): a batch holding such a line skips the plain COPY, which would fail on
  /// a stored turn (and leave a duplicate-key ERROR in Postgres's log).
  bool maybe_stored = false;
};

/// Builds a transcript_line: inbound() at most once and before any reply(), then the
/// replies in order, then finish(). Texts are cleaned like every transcript text
/// (invalid UTF-8 becomes U+FFFD, NUL is dropped).
class transcript_line_builder {
 public:
  transcript_line_builder(std::string_view tenant, std::string_view session_id,
                          std::int64_t sequence);
  void inbound(std::string_view text);
  void reply(std::string_view text);
  /// `at_ms`: the turn's time in milliseconds since the epoch (<= 0: now). `replay`:
  /// the turn's replay record, a JSON object (bot::turn_recorder), empty for none.
  transcript_line finish(std::int64_t at_ms, std::string_view replay = {});

 private:
  void open_outbound();
  transcript_line line_;
  bool outbound_open_ = false;
};

/// The records of many turns in one transaction: the conversations, then the turns'
/// transcript lines by one COPY. A conversation record without `ended_at_ms` is a start
/// (inserted once, as upsert_conversation, at now()); one with `ended_at_ms` set is an
/// end (as end_conversation with its end_reason, at now()); the starts are written
/// before the ends. Conversation writes come first, so a transcript never names a
/// conversation that is not recorded. A line whose turn is stored already (a batch
/// written again, the turn written by another node or tenant first) is skipped, not
/// merged: a stored turn is whole. Result: messages stored.
catalog_job<std::size_t> write_turn_lines(
    std::vector<conversation_record> conversations,
    std::shared_ptr<const std::vector<transcript_line>> lines);
/// write_turn_lines of lines alone (tests and tools).
catalog_job<std::size_t> write_turn_lines(std::vector<transcript_line> lines);

/// A session's messages by (sequence, direction "in" first, idx).
catalog_job<std::vector<transcript_row>> transcript(std::string tenant, std::string session_id);

}  // namespace parley::store
