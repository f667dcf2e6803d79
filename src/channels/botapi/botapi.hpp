#pragma once
/// parley::channels::botapi — the codec of the Bot API channel (Einstein Bots API
/// v5.3.0 shape, contract in `../shared/contracts/einstein-bots-api-v5.3.0.yml`).
///
/// Pure functions: no CAF, no I/O, no clock, no randomness. Every parse function
/// accepts any bytes and never throws; bad input becomes a `failure` carrying the
/// HTTP status and a message that names the field at fault. Every render function
/// is deterministic: the same arguments give byte-identical responses, so a turn
/// replayed from its recorded `TurnResult` (a client retrying a `sequenceId`) answers
/// exactly as the first time.
///
/// Typical use by the gateway:
///
///     auto route = botapi::match_route(req.method, req.path);
///     if (!route.ok()) return respond(botapi::render_failure(route.err(), req, now_ms));
///     switch (route->kind) {
///       case botapi::endpoint::start_session: {
///         auto start = botapi::parse_start(req);
///         if (!start.ok()) return respond(botapi::render_failure(start.err(), req, now_ms));
///         // authenticate start->ctx.org_id / bearer_token, run bot::start(...)
///         respond(botapi::render_start(reply, turn));
///       } ...
///     }

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "src/http/http.hpp"
#include "src/proto/bot.pb.h"

namespace parley::channels::botapi {

namespace v1 = ::parley::bot::v1;

/// Values by variable name: the same type as `parley::bot::variables`, the input
/// of `bot::start`. (Declared here so that this header does not need bot.hpp.)
using variables = std::map<std::string, v1::Value, std::less<>>;

/// The API version this codec speaks, as it appears in paths and in `/versions`.
inline constexpr std::string_view api_version = "v5.3.0";

// ------------------------------------------------------------------ failures

/// Why a request cannot be served. `status` is the HTTP status; `error` the
/// contract's error class name ("BadRequestError"); `message` one sentence that
/// starts with the field at fault ("message.sequenceId: required integer").
struct failure {
  int status = 400;
  std::string error;
  std::string message;
};

/// A failure with the contract's error class name for `status`.
failure make_failure(int status, std::string message);

/// Either a value or a failure.
template <class T>
class parsed {
 public:
  parsed(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  parsed(failure f) : v_(std::move(f)) {}    // NOLINT: implicit by design
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const failure& err() const { return std::get<1>(v_); }

 private:
  std::variant<T, failure> v_;
};

// ------------------------------------------------------------------ routing

enum class endpoint { status, versions, start_session, continue_session, end_session };

struct route {
  endpoint kind = endpoint::status;
  std::string id;  ///< bot id (start_session) or session id (continue/end); else empty
};

/// Maps method and path to an endpoint. Unknown path → 404 NotFoundError; a known
/// path with another method → 405. Path ids must be 1..128 characters of
/// [A-Za-z0-9._~:-]; anything else is 404.
parsed<route> match_route(std::string_view method, std::string_view path);

// ------------------------------------------------------------------ requests

/// What every session request carries in its headers.
struct request_context {
  std::string org_id;        ///< X-Org-Id: the tenant
  std::string bearer_token;  ///< from `Authorization: Bearer <token>`
  std::string request_id;    ///< X-Request-ID received, else http::request::request_id
  std::string runtime_crc;   ///< X-Runtime-CRC received (continue/end), may be empty
};

/// A variable as the client sent it. `type` is the contract's name ("boolean",
/// "date", "dateTime", "money", "number", "text", "object", "ref", "list").
/// Conversion to `value`: boolean → boolean; number → number; money "USD 10.40"
/// → number 10.4 (the currency code is dropped: the bot has one currency);
/// text, date, dateTime, ref → text; object → object keyed by the nested
/// variables' names; list → list (items `{type, value}` convert as typed values,
/// other items as plain JSON); a JSON null → null_value.
struct variable {
  std::string name;
  std::string type;
  v1::Value value;
};

/// `responseOptions` of a request; absent options are false.
struct response_options {
  bool variables = false;           ///< variables.include
  bool only_changed = false;        ///< variables.onlyChanged
  std::vector<std::string> filter;  ///< variables.filter; empty: no filtering
  bool metrics = false;
  bool intents = false;
  bool entities = false;
};

struct referrer {
  std::string type;  ///< "Salesforce:Core:Bot:Id" or "Salesforce:BotRuntime:Session:Id"
  std::string value;
};

/// `POST /v5.3.0/bots/{bot-id}/sessions`.
struct start_request {
  request_context ctx;
  std::string bot_id;
  std::string external_session_key;
  std::string endpoint;             ///< forceConfig.endpoint
  std::optional<std::string> text;  ///< message.text; nullopt when absent
  std::vector<variable> variables;  ///< in the order received
  std::vector<referrer> referrers;
  std::optional<std::string> tz;
  response_options options;

  /// The variables by name (a later duplicate wins), ready for bot::start.
  botapi::variables bot_variables() const;
};

/// The kinds of messages a client sends on a live session. `end_session` is the
/// contract's private `EndSessionMessage`, accepted as well.
enum class message_kind {
  text,
  choice,
  redirect,
  transfer_succeeded,
  transfer_failed,
  end_session,
  set_variables
};

/// `POST /v5.3.0/sessions/{session-id}/messages`.
struct continue_request {
  request_context ctx;
  std::string session_id;
  std::int64_t sequence_id = 0;  ///< message.sequenceId, >= 0
  message_kind kind = message_kind::text;
  std::string in_reply_to;                   ///< message.inReplyToMessageId, may be empty
  std::string text;                          ///< kind text
  std::optional<std::int64_t> choice_index;  ///< kind choice, 1-based
  std::optional<std::string> choice_id;      ///< kind choice
  std::string dialog_id;                     ///< kind redirect
  std::string
      reason;  ///< transfer_failed: "NoAgentAvailable"|"Error"; end_session: EndSessionReason
  std::string description;          ///< transfer_failed, may be empty
  std::vector<variable> variables;  ///< kind set_variables
  response_options options;

  /// The variables by name (a later duplicate wins), ready for bot::set_variables.
  botapi::variables bot_variables() const;
};

/// `DELETE /v5.3.0/sessions/{session-id}`.
struct end_request {
  request_context ctx;
  std::string session_id;
  std::string reason;  ///< X-Session-End-Reason: UserRequest, Transfer, Expiration, Error, Other
};

/// Parse functions check, in this order: the path (404), `Authorization: Bearer`
/// (401), `X-Org-Id` (400), other required headers (400), then the JSON body (400).
/// They never throw.
parsed<start_request> parse_start(const http::request& req);
parsed<continue_request> parse_continue(const http::request& req);
parsed<end_request> parse_end(const http::request& req);

/// The VM input for a text or choice message. A choice by id feeds the id as
/// the button payload (ids are rendered as payloads); a choice by index picks
/// the option of the last message with choices in `last_turn` (the recorded
/// result of the previous turn). Fails with 400 naming `message.choiceIndex`
/// when there is no such option, and for message kinds that carry no user input.
parsed<v1::Input> to_input(const continue_request& msg, const v1::TurnResult* last_turn,
                           std::int64_t now_unix);

// ------------------------------------------------------------------ responses

/// A variable of the response, as the runtime holds it.
struct variable_out {
  std::string name;
  v1::VarType type = v1::VAR_TEXT;
  v1::Value value;
};

/// The session variables to return for `options`: nothing unless
/// `options.variables`; with a filter, only those names; with `only_changed`,
/// only those whose value differs from `previous` (every variable when
/// `previous` is null). Declaration order of the program.
std::vector<variable_out> response_variables(const v1::Program& program, const v1::State& state,
                                             const response_options& options,
                                             const v1::State* previous = nullptr);

/// What the runtime knows about the turn beyond the bot's `TurnResult`.
struct reply {
  std::string session_id;
  /// The sequence id this turn answers (0 for the start of a session). With
  /// `session_id` it seeds the message ids: message i of the turn is
  /// `message_id(session_id, sequence_id, i)`.
  std::int64_t sequence_id = 0;
  std::string bot_version;  ///< e.g. the program id; rendered as `botVersion`
  std::vector<std::int64_t> processed_sequence_ids;
  std::string request_id;  ///< echoed in X-Request-ID
  /// X-Runtime-CRC; empty: a hash of session id and bot version.
  std::string runtime_crc;
  /// Prefix of the `_links` hrefs, e.g. "https://bots.example.com"; empty gives
  /// paths relative to the host.
  std::string base_url;
  /// Currency code for money variables ("USD 10.40"); empty: "USD".
  std::string currency;
  response_options options;             ///< intents, entities, metrics
  std::vector<variable_out> variables;  ///< rendered when options.variables
};

/// A stable message id in UUID form, a pure function of its arguments.
std::string message_id(std::string_view session_id, std::int64_t sequence_id, std::size_t index);

/// The index render_end gives its `sessionEnded` message.
inline constexpr std::size_t end_message_index = static_cast<std::size_t>(-1);

/// 200 for a start: ResponseEnvelope, headers X-Request-ID, X-Runtime-CRC,
/// X-Bot-Mode. Messages: each outbound text → `text`; an outbound's choices →
/// `choices` (buttons; choice id = payload, alias = 1-based index) after its
/// text; a transfer → `escalate` (targets: the queue as Queue:Id, each target
/// by its prefix "bot:", "flow:", "queue:", "skill:", else Skill:Id); an ended
/// session → `sessionEnded` (COMPLETED → Action, INFINITE_LOOP_DETECTED →
/// InfiniteLoopDetected, otherwise Error).
http::response render_start(const reply& r, const v1::TurnResult& turn);

/// 200 for a continue: ChatMessageResponseEnvelope; headers X-Request-ID,
/// X-Runtime-CRC. Same message mapping as render_start.
http::response render_continue(const reply& r, const v1::TurnResult& turn);

/// 200 for an end: ChatMessageResponseEnvelope with one `sessionEnded`
/// message (reason ClientRequest) whose id is
/// `message_id(session_id, sequence_id, end_message_index)`, distinct from the
/// ids of every turn.
http::response render_end(const reply& r);

/// The request's org (its X-Org-Id, trimmed) when it is one the API accepts, else "":
/// for routing a request before it is parsed (cluster/region).
std::string org_of(const http::request& req);

/// An error in the contract's Error schema with X-Request-ID. `status` picks the
/// error class name (400 BadRequestError, 401 UnauthorizedError, 403
/// ForbiddenError, 404 NotFoundError, 405 MethodNotAllowedError, 422
/// RequestProcessingException, 423 ServerBusyError, 429 TooManyRequestsError,
/// 503 ServiceUnavailable, other InternalServerError). `retry_after_s` adds a
/// Retry-After header (useful with 423, 429, 503). `timestamp_ms`: Unix ms.
http::response render_error(int status, std::string_view message, std::string_view path,
                            std::string_view request_id, std::int64_t timestamp_ms,
                            std::optional<std::int64_t> retry_after_s = std::nullopt);

/// render_error for a parse failure of `req` (path and request id taken from it).
http::response render_failure(const failure& f, const http::request& req,
                              std::int64_t timestamp_ms);

/// `GET /status`: 200 `{"status":"UP"}` or `{"status":"DOWN"}` (the contract
/// has no other status for it).
http::response render_status(bool up);

/// `GET /versions`: 200 `{"versions":[{"versionNumber":"v5.3.0","status":"ACTIVE"}]}`.
http::response render_versions();

}  // namespace parley::channels::botapi
