#pragma once
/// parley::channels::directline — the codec of Bot Framework Direct Line 3.0 (web
/// chat), as `../shared/protocols.md` ("Direct Line 3.0") describes: posted
/// activities, the activities Parley sends back, ActivitySets, the token and
/// conversation answers, errors, and Parley's self-describing secrets and tokens.
///
/// Pure functions: no I/O, no clock (callers pass the time), any thread. Parsers
/// accept any bytes and never throw (but std::bad_alloc); a refusal is a
/// `parley::error` (src/channels/errors.hpp) whose message names the field at fault
/// and never holds a secret or a token.
///
/// Activities in the log: the gateway stores each activity rendered *without* its
/// `id` (a JSON object whose first member follows the `{`); `with_id` inserts the id
/// at read time, so an activity's id is its position in the log (`activity_id`) and
/// the watermark is the count of activities seen.
///
/// Secrets: `dl1~<tenant>~<bot>~<random>` — the tenant and bot are ids (letters,
/// digits, '_', '-', '.'), so `~` separates them without escaping; the gateway
/// compares the whole value with the tenant secret `directline.<bot>` in constant time.
/// Tokens: `dlt1.<base64url(tenant \n bot \n conversation \n expiry)>.<base64url(mac)>`,
/// mac = HMAC-SHA256(key, "dlt1." + payload part): any node holding the region's key
/// verifies them, no lookup.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/result.hpp"
#include "src/http/http.hpp"

namespace parley::channels::directline {

// ------------------------------------------------------------------ posted activities

struct attachment {
  std::string content_type;  ///< `contentType`
  std::string content_url;   ///< `contentUrl`
  std::string name;
};

/// One activity a client POSTed.
struct activity {
  std::string type;  ///< "message", "event" or "typing" (others are refused)
  std::string text;
  std::string locale;
  std::string name;  ///< event name
  std::string from_id, from_name, from_role;
  /// `channelData` re-serialized (the same JSON value, written compactly); empty
  /// when absent. Echoed back unchanged.
  std::string channel_data;
  /// channelData.clientActivityID when it is a string (Web Chat's retry key).
  std::string client_activity_id;
  /// `value` re-serialized; empty when absent. `value_text`: the value when a string.
  std::string value;
  std::string value_text;
  std::vector<attachment> attachments;
};

/// Most attachments and bytes of one posted activity the codec accepts.
inline constexpr std::size_t max_attachments = 16;
inline constexpr std::size_t max_activity_bytes = 256 * 1024;

/// Parses a POSTed activity. 400 naming the field: "body: not JSON",
/// "type: must be message, event or typing", "from.id: must be a string", ...
result<activity> parse_activity(std::string_view body);

// ------------------------------------------------------------------ rendered activities

/// The id of the activity at position `index` of a conversation's log:
/// "<conversation>|0000007" (the shape Microsoft's service uses).
std::string activity_id(std::string_view conversation_id, std::uint64_t index);

/// `stored` (an activity rendered by the functions below, without id) with
/// `"id":"<id>"` as its first member.
std::string with_id(std::string_view stored, std::string_view id);

/// An ISO 8601 UTC time with milliseconds ("2026-12-02T13:40:00.123Z").
std::string timestamp(std::int64_t unix_ms);

/// The user's own activity, as the log keeps it (without id): its type, text, from,
/// locale, attachments, value and channelData as posted, with this conversation.
std::string render_user_echo(const activity& a, std::string_view conversation_id,
                             std::int64_t now_ms);

/// A bot reply: a message with `text`, and for choices
/// `suggestedActions{actions:[{type:"imBack",title,value}]}` (value = title: the
/// text the user's tap sends, which the bot's menu matches).
struct bot_message {
  std::string text;
  std::vector<std::string> choices;  ///< labels
};
std::string render_bot_message(const bot_message& m, std::string_view bot,
                               std::string_view conversation_id, std::string_view reply_to_id,
                               std::int64_t now_ms);

/// `typing` from the bot (sent on the stream, never kept in the log).
std::string render_typing(std::string_view bot, std::string_view conversation_id,
                          std::int64_t now_ms);

/// `endOfConversation` from the bot: the conversation ended.
std::string render_end_of_conversation(std::string_view bot, std::string_view conversation_id,
                                       std::int64_t now_ms);

/// `{"activities":[...],"watermark":"<watermark>"}`; `activities` are complete JSON
/// objects (with ids).
std::string render_activity_set(const std::vector<std::string>& activities,
                                std::uint64_t watermark);

/// `{"conversationId","token","expires_in"}` (tokens/generate, tokens/refresh).
std::string render_token(std::string_view conversation_id, std::string_view token,
                         std::int64_t expires_in);

/// `{"conversationId","token","expires_in","streamUrl"}` (start, reconnect);
/// `expires_in` omitted when negative.
std::string render_conversation(std::string_view conversation_id, std::string_view token,
                                std::int64_t expires_in, std::string_view stream_url);

/// `{"id":"<id>"}` (the answer to a posted activity).
std::string render_resource(std::string_view id);

/// A Direct Line error: `{"error":{"code","message"}}` with `status` and CORS
/// headers left to the gateway.
http::response error_response(int status, std::string_view code, std::string_view message);

/// The watermark a client sent (`watermark=` of a raw query); 0 when absent or empty;
/// nullopt when not a decimal number.
std::optional<std::uint64_t> watermark_of(std::string_view query);

/// The value of `name` in a raw query, percent-decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

// ------------------------------------------------------------------ secrets and tokens

struct secret_claims {
  std::string tenant, bot;
};

/// True when `bearer` has the shape of a Parley Direct Line secret (`dl1~`).
bool is_secret(std::string_view bearer);

/// The tenant and bot a secret names; 403 "Authorization: not a Direct Line secret".
result<secret_claims> parse_secret(std::string_view secret);

/// `dl1~<tenant>~<bot>~<base64url(random)>`; `random` should hold 24 or more bytes.
std::string make_secret(std::string_view tenant, std::string_view bot, std::string_view random);

struct token_claims {
  std::string tenant, bot, conversation;
  std::int64_t expires_unix = 0;
};

/// A token for `c`, signed with `key`.
std::string sign_token(const token_claims& c, std::string_view key);

/// The claims of a token signed with `key`: 403 (code `forbidden`) "Authorization:
/// not a valid token" when malformed or its signature does not match (in constant
/// time); code `TokenExpired` when it expired at or before `now_unix`.
result<token_claims> verify_token(std::string_view token, std::string_view key,
                                  std::int64_t now_unix);

inline constexpr std::string_view token_expired = "TokenExpired";

/// The bearer credential of `Authorization: Bearer <x>`; empty when absent.
std::string bearer_of(const http::request& req);

/// base64url without padding (RFC 4648 section 5).
std::string base64url(std::string_view bytes);
/// Its inverse; nullopt on a character outside the alphabet or a bad length.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace parley::channels::directline
