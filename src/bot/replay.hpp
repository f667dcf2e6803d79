#pragma once
/// parley::bot replay: what a turn must record so that its conversation can be run
/// again, deterministically, through another program (a candidate version), and the
/// engine that runs it and says where the candidate's replies or outcome differ.
///
/// Pure: no CAF, no I/O. The conversation actor fills a `turn_recorder` while a turn
/// runs and stores its JSON in the turn's transcript row (column `replay`,
/// src/store/migrations/0013_transcript_replay.sql); `parleyctl replay` reads the rows
/// back through the admin API, parses them with `parse_record` and calls `replay`.
///
/// Recorded per turn: how the VM was entered (op and input, after a menu choice was
/// resolved to its payload), the turn's clock (Input.now_unix), every action answer the
/// VM received (ok, status, body, error) in order, and the turn's outcome. Bounds: an
/// answer's body past `max_recorded_body` bytes and an error past `max_recorded_error`
/// bytes are cut (at a UTF-8 boundary) and marked `truncated`; a conversation holding
/// such an answer cannot be replayed exactly and is reported as skipped, with the reason.
/// Values the client set (start variables, setVariables) are not recorded, like the
/// transcript keeps only their names: such a conversation is skipped too.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/bot/bot.hpp"

namespace parley::bot {

inline constexpr std::size_t max_recorded_body = 16 * 1024;
inline constexpr std::size_t max_recorded_error = 1024;

/// Collects one turn's replay record. Used by one thread (the conversation's) at a time.
class turn_recorder {
 public:
  void clear();
  /// How the VM was entered: op is one of "start" (input: the first message, may be
  /// empty), "text", "payload", "failure" (input: the error), "end", "set_variables",
  /// "redirect" (input: the dialog), "transfer_succeeded", "transfer_failed" (input:
  /// "no_agent" or empty), "timer" (input: "nudge" or "close", what the timer did),
  /// "none" (the bot did not run: handed to an agent). The last
  /// call wins. `variables`: the client set values the record does not keep.
  void enter(std::string_view op, std::string_view input, bool variables = false);
  bool entered() const { return !op_.empty(); }
  /// Whether an answer was cut at its bound since clear().
  bool cut() const { return cut_; }
  /// The VM received `answer` (an Input holding an ActionResult) for action `name`.
  void action(std::string_view name, const v1::Input& answer);
  /// The record as JSON: {"v":1,"op","input","now","status","end_reason","actions":[...]}.
  std::string finish(std::int64_t now_unix, const v1::TurnResult& result) const;

 private:
  std::string op_, input_;
  bool variables_ = false;
  bool cut_ = false;
  std::string actions_;  // JSON array elements, comma separated
};

struct recorded_action {
  std::string name;
  v1::ActionResult result;
  bool truncated = false;
};

/// One recorded turn: what the transcript shows (user, replies) and its replay record.
struct recorded_turn {
  std::int64_t sequence = 0;
  std::string user;                  ///< the inbound message as the transcript keeps it
  std::vector<std::string> replies;  ///< the recorded replies' texts
  bool has_record = false;           ///< false: written before replay records existed
  std::string op, input;
  bool variables = false;
  std::int64_t now_unix = 0;
  std::vector<recorded_action> actions;
  v1::Status status = v1::STATUS_UNSPECIFIED;
  v1::EndReason end_reason = v1::END_REASON_UNSPECIFIED;
};

struct recorded_conversation {
  std::string session_id;
  int version = 0;
  std::vector<recorded_turn> turns;  ///< by sequence
  bool truncated = false;            ///< more turns than the reader returns
};

/// Parses a record that turn_recorder::finish wrote into `turn` (has_record set).
/// Fails with `bad_record` naming the field.
result<void> parse_record(std::string_view json, recorded_turn& turn);

/// "awaiting input", "ended (completed)", "transferred", ...
std::string outcome_text(v1::Status status, v1::EndReason reason);

struct turn_diff {
  std::int64_t turn = 0;  ///< the turn's sequence number
  std::string user;
  std::vector<std::string> recorded, candidate;
  std::string recorded_outcome, candidate_outcome;
  std::string reason;  ///< set when the candidate could not be run on (see replay)
};

enum class replay_verdict { same, differs, skipped };

struct conversation_replay {
  std::string session_id;
  replay_verdict verdict = replay_verdict::same;
  std::string reason;            ///< why skipped, or why the replay stopped
  std::vector<turn_diff> diffs;  ///< the differing turns, at most max_diffs
};

/// Runs the conversation's inbound messages through `candidate`, turn by turn, with
/// the recorded clock, answering each action the candidate calls with the recorded
/// answer: the first unused one of that name at or after the last one used (order
/// within the conversation), else the first unused one of that name. A call with no
/// such answer stops the replay: the conversation differs, with that reason. A turn
/// differs when its reply texts or its outcome (status, end reason) differ. A recorded
/// timer turn fires the candidate's own timer if one is due by the turn's clock (the
/// candidate's deadlines may differ); timers the candidate would have fired between
/// recorded turns are not simulated.
conversation_replay replay(const program& candidate, const recorded_conversation& conversation,
                           std::size_t max_diffs = 5);

}  // namespace parley::bot
