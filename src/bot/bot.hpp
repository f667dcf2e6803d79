#pragma once
/// parley::bot — the public face of the bot engine: compile a bot definition
/// file into a program, load it, and run conversations on it turn by turn.
///
/// Nothing here does I/O, blocks, or includes CAF. All functions are pure with
/// respect to their arguments; a loaded `program` is immutable and may be shared
/// by any number of threads (conversation actors) at once.
///
/// Typical use by a conversation actor:
///
///     auto prog = bot::load(compiled);             // once per bot version
///     auto r = bot::start(**prog, client_vars, now); // new conversation
///     // send r.messages(); persist r.state()
///     r = bot::resume(**prog, r.state(), bot::text_input("hi", now));
///     if (r.state().status() == v1::AWAITING_ACTION)
///       // perform r.action() asynchronously, then:
///       r = bot::resume(**prog, r.state(), bot::action_input(result, now));

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/result.hpp"
#include "src/proto/bot.pb.h"

namespace parley::bot {

namespace v1 = ::parley::bot::v1;

// ------------------------------------------------------------------ compiler

enum class severity { error, warning };

/// One finding of the compiler, located in the source file (1-based line and
/// column; 0 when the finding concerns the whole file).
struct diagnostic {
  severity level = severity::error;
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;
  /// "file:line:col: error: message", the format compilers and editors expect.
  std::string to_string() const;
};

/// The outcome of a compilation: the program when there is no error, and every
/// diagnostic found (errors and warnings), sorted by position.
struct compile_result {
  std::optional<v1::Program> program;
  std::vector<diagnostic> diagnostics;
  bool ok() const { return program.has_value(); }
  std::size_t error_count() const;
  std::size_t warning_count() const;
};

/// Limits the compiler applies that a node may set.
struct compile_options {
  /// The shortest `nudge_after` / `close_after` a bot may set (at most 7 days). A
  /// node's `timers.min_after_ms` lowers it, so that tests wait a second, not ten.
  std::chrono::milliseconds min_timer{10000};
};

/// Compiles a bot definition (YAML, or JSON) into a program. Reports every error
/// at once. Deterministic: the same text gives byte-identical programs (and the
/// same program id). `file_name` only labels the diagnostics.
compile_result compile(std::string_view text, std::string_view file_name = "bot.yaml",
                       const compile_options& options = {});

/// Reads and compiles a file; a read failure is reported as a diagnostic.
compile_result compile_file(const std::string& path);

/// Serializes a program deterministically (same program, same bytes).
std::string serialize(const v1::Program& program);

// ------------------------------------------------------------------ program

/// A compiled program, prepared for execution (expressions parsed, regexes and
/// the NLU model built). Immutable; share it with std::shared_ptr.
class program {
 public:
  ~program();
  program(const program&) = delete;
  program& operator=(const program&) = delete;

  const v1::Program& proto() const;
  /// "<name>@<hash>": the exact program; stored in every state.
  const std::string& id() const;
  /// How long a session may stay idle before the caller should end it.
  std::chrono::seconds idle_timeout() const;

  struct impl;
  const impl& internals() const { return *impl_; }

 private:
  friend result<std::shared_ptr<const program>> load(v1::Program);
  explicit program(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Prepares a program for execution. Fails (code `bad_program`) only when the
/// program did not come from `compile` of a compatible version.
result<std::shared_ptr<const program>> load(v1::Program compiled);

// ------------------------------------------------------------------ VM

/// Guards applied by the VM.
inline constexpr std::size_t max_steps_per_turn = 1000;
inline constexpr std::size_t max_input_bytes = 2000;  // longer input is truncated
inline constexpr std::size_t max_text_value_bytes = 4096;
inline constexpr std::size_t max_list_items = 100;

/// Values the client passes at session start, by variable name. Only variables
/// declared `client_settable` are accepted; others are ignored and reported in
/// TurnResult.error.
using variables = std::map<std::string, v1::Value, std::less<>>;

/// Starts a conversation: runs the welcome dialog (or the main menu) until the
/// bot needs input. `now_unix` is the wall clock for relative dates.
v1::TurnResult start(const program& prog, const variables& vars, std::int64_t now_unix);

/// Sets variables of a live conversation for its client (the Bot API's setVariables
/// message) without running the bot: the result holds the new state (its turn
/// counted) and no messages. All or nothing: a name that is not a variable declared
/// `client_settable`, or a value its type cannot hold, fails with `invalid_argument`
/// naming them, and a state that has ended with `session_ended`.
result<v1::TurnResult> set_variables(const program& prog, const v1::State& state,
                                     const variables& vars);

/// The client's report on a transfer the bot asked for (state TRANSFERRED), the Bot
/// API's transferSucceeded and transferFailed messages. Succeeded: the agent has the
/// conversation and the bot's part ends (ENDED, COMPLETED; no messages). Failed: the bot takes it
/// back: it says so and shows its main menu (or waits for input). Fails with
/// `not_transferred` when the state is not TRANSFERRED.
result<v1::TurnResult> transfer_succeeded(const program& prog, const v1::State& state);
result<v1::TurnResult> transfer_failed(const program& prog, const v1::State& state, bool no_agent,
                                       std::int64_t now_unix);

/// The Bot API's redirect message: the conversation leaves whatever it was doing (an
/// open question, a menu) and runs the dialog named `dialog` until the bot needs input,
/// ends or transfers, as if the user had picked it. Fails with `unknown_dialog` naming
/// it, `session_ended` when the state has ended, and `awaiting_transfer` when it waits
/// for its transfer to an agent.
result<v1::TurnResult> redirect(const program& prog, const v1::State& state,
                                std::string_view dialog, std::int64_t now_unix);

/// Runs one turn: feeds `input` to the conversation in `state` and runs until
/// the bot needs input, ends, transfers, or needs an action result. Never
/// throws for user data; a runtime error runs the bot's error dialog (or ends
/// the session with END_REASON ERROR). A state of another program ends the
/// session with PROGRAM_MISMATCH. A state that already ended stays ended.
v1::TurnResult resume(const program& prog, const v1::State& state, const v1::Input& input);

/// A status as the transcripts, replay records and conversation tests write it:
/// "awaiting_input", "awaiting_action", "ended", "transferred" ("" unspecified).
const char* status_name(v1::Status s);
/// The same, taking `state` over instead of copying it (it is left empty).
v1::TurnResult resume(const program& prog, v1::State&& state, const v1::Input& input);

/// Input helpers.
v1::Input text_input(std::string_view text, std::int64_t now_unix = 0);
v1::Input payload_input(std::string_view payload, std::int64_t now_unix = 0);
v1::Input action_input(int http_status, std::string_view json_body, std::int64_t now_unix = 0);
v1::Input action_failure_input(std::string_view error, std::int64_t now_unix = 0);
/// The caller failed while handling this conversation: run the error dialog.
v1::Input failure_input(std::string_view error, std::int64_t now_unix = 0);
/// A timer of the state fell due: `due_ms` is the deadline the caller found due
/// (`next_timer_ms` of the state it last committed). The turn nudges (the question's
/// `nudge` text; close_at_ms stays armed) or closes (the `on_close` dialog runs, else
/// the session ends with the close message); TurnResult.timer says which. A deadline
/// the state no longer holds (the user answered first, or it fired already) changes
/// nothing: TurnResult.timer is empty and the state is the one given, turn count and
/// all, so the caller commits nothing. Timers fire only while the state awaits input.
v1::Input timer_input(std::int64_t due_ms, std::int64_t now_unix);
/// The state's next timer deadline (unix ms; the earlier of nudge_at_ms and
/// close_at_ms that is set), 0 when it has none or does not await input.
std::int64_t next_timer_ms(const v1::State& state);

/// Fills in the secrets the bot file wrote in the action's url and headers:
/// each `request.secrets()` entry's placeholder `{{secret.NAME}}` is replaced
/// by `lookup(NAME)`, and nothing else is. `{{secret.` text that a variable or
/// the user's words rendered into the request stays literal, and a request
/// without references (one rendered before they existed) resolves nothing.
/// The result has no references left, so resolving it again changes nothing.
/// Fails with code `missing_secret` naming the first unknown secret, or
/// `bad_secret_ref` when a reference does not point at its placeholder. The
/// request as the VM returned it (what transcripts and tools show) never holds
/// a value; only the result does, so the caller keeps it out of logs.
result<v1::ActionRequest> resolve_secrets(
    v1::ActionRequest request,
    const std::function<std::optional<std::string>(std::string_view)>& lookup);

/// Reads a variable of a state by name (the default when unset); nullopt for an
/// unknown name.
std::optional<v1::Value> get_variable(const program& prog, const v1::State& state,
                                      std::string_view name);

/// Renders a value as a template would ("12.5", "true", "a, b" for a list, "" for null).
std::string to_text(const v1::Value& v);

// ------------------------------------------------------------------ NLU

/// Classifies a text with the program's model: intents best first (at most
/// `top`), with confidences in [0, 1]. Exposed for tools and measurements.
std::vector<v1::IntentScore> classify(const program& prog, std::string_view text,
                                      std::size_t top = 3);

/// Extracts every entity the program knows from a text.
std::vector<v1::EntityMatch> extract_entities(const program& prog, std::string_view text,
                                              std::int64_t now_unix);

}  // namespace parley::bot
