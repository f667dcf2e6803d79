#pragma once
/// parley::channels::messenger — the codec of the Meta Messenger channel
/// (Messenger Platform webhooks and the Send API), as `../shared/protocols.md`
/// ("Meta Messenger") describes.
///
/// Pure functions: no I/O, no clock (callers pass the time), any thread. Parse and
/// verify functions accept any bytes and never throw (but std::bad_alloc); a
/// refusal is a `parley::error` (src/channels/errors.hpp: `http_status` gives 400,
/// 403 or 404) whose message names the field at fault and never holds a secret.
///
/// Typical use by the gateway:
///
///     GET:  auto c = messenger::verify_subscription(req.query, verify_token);
///           c ? respond(200, "text/plain", *c) : respond(403, c.err());
///     POST: auto ok = messenger::verify_signature(app_secret, req.body,
///                                                 req.header("X-Hub-Signature-256"));
///           if (!ok) return respond(403, ok.err());
///           auto batch = messenger::parse_webhook(req.body);   // 400, 404
///           for (auto& e : batch->events) ...  // skip echo, log invalid and unknown
///           respond(200);
///
/// Replies: check_window, then render_reply for each outbound message, each body
/// POSTed to send_api_url.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/result.hpp"
#include "src/proto/bot.pb.h"

namespace parley::channels::messenger {

// ------------------------------------------------------------------ verification

/// The verification GET's query (raw, after '?'): when hub.mode is "subscribe" and
/// hub.verify_token equals `verify_token` (constant time), hub.challenge, the raw
/// body of the 200. Else 403 naming hub.mode or hub.verify_token; 400 naming
/// hub.challenge when it is missing. An empty `verify_token` matches nothing.
result<std::string> verify_subscription(std::string_view query, std::string_view verify_token);

/// Checks `header` (X-Hub-Signature-256, empty when absent) against
/// "sha256=" + hex HMAC-SHA256(app_secret, raw_body), in constant time; the hex
/// may be in either case. 403 "X-Hub-Signature-256: missing", "... must be
/// sha256=<64 hex digits>" or "... does not match the body". An empty
/// `app_secret` matches nothing.
result<void> verify_signature(std::string_view app_secret, std::string_view raw_body,
                              std::string_view header);

/// The header value for `raw_body`: for tests and fake providers.
std::string compute_signature(std::string_view app_secret, std::string_view raw_body);

// ------------------------------------------------------------------ inbound

enum class event_kind {
  message,   ///< a user's message (text, quick reply, attachments)
  postback,  ///< a button or menu tap
  echo,      ///< our own message sent back (message.is_echo): ignore it
  delivery,  ///< message_deliveries: mids and watermark
  read,      ///< message_reads: watermark
  unknown,   ///< an event of another kind (reaction, optin, referral, standby...)
  invalid,   ///< a messaging item with a field of the wrong type: see `problem`
};

struct attachment {
  std::string type;  ///< image, video, audio, file, location, fallback, ...
  std::string url;   ///< payload.url; empty when it has none (location)
};

/// One event of a webhook. Fields not used by its kind stay empty.
struct event {
  event_kind kind = event_kind::unknown;
  std::string page_id;         ///< entry[].id
  std::string sender_id;       ///< sender.id: the user (PSID), the page for an echo
  std::string recipient_id;    ///< recipient.id
  std::int64_t timestamp = 0;  ///< Unix ms; 0 when absent
  std::string mid;             ///< message, echo, postback (may be empty)
  std::string text;            ///< message, echo
  std::optional<std::string> quick_reply_payload;  ///< message
  std::vector<attachment> attachments;             ///< message, echo
  std::string payload;                             ///< postback
  std::string title;                               ///< postback
  std::vector<std::string> mids;                   ///< delivery (may be empty)
  std::int64_t watermark = 0;                      ///< delivery, read (Unix ms)
  /// unknown: the event's key ("reaction"), "standby" for a standby item;
  /// invalid: the field at fault and why ("entry[0].messaging[1].message.text:
  /// must be a string").
  std::string problem;
};

/// A parsed webhook POST: every messaging item of every entry, in order.
struct webhook {
  std::vector<event> events;
};

/// Messaging items beyond this many in one POST are refused (400): Meta batches
/// far fewer.
inline constexpr std::size_t max_events = 1000;

/// Parses a webhook body. The whole body is refused (400 naming the field) when it
/// is not JSON, not an object, nested deeper than 32 levels, when `entry` is not
/// an array of objects or an entry's `messaging` is not an array; 404 "object:
/// must be \"page\"" for another object. A messaging item is never fatal: one of
/// an unknown kind is `unknown`, one whose fields have the wrong types (or lacks
/// sender.id or recipient.id) is `invalid` with its `problem`. Text fields are
/// well-formed UTF-8 (the reader refuses JSON strings that are not).
result<webhook> parse_webhook(const std::string& body);

// ------------------------------------------------------------------ outbound

inline constexpr std::string_view default_api_base = "https://graph.facebook.com/v19.0";

/// `{api_base}/me/messages?access_token=<page_token percent-encoded>`. The URL
/// holds a secret: log send_api_endpoint instead.
std::string send_api_url(std::string_view api_base, std::string_view page_token);

/// `{api_base}/me/messages`, without the token.
std::string send_api_endpoint(std::string_view api_base);

/// Who speaks: the bot answers with messaging_type RESPONSE; a human agent with
/// MESSAGE_TAG and tag HUMAN_AGENT.
enum class sender_role { bot, agent };

/// Send API limits (protocols.md), lengths in UTF-16 units (src/channels/text/split.hpp).
inline constexpr std::size_t max_text_units = 1999;  ///< text under 2000 characters
inline constexpr int max_quick_replies = 13;
inline constexpr std::size_t max_title_units = 20;
inline constexpr std::size_t max_payload_units = 1000;

/// The Send API bodies for one outbound message to `psid`, in sending order. The
/// text is cut into parts of at most max_text_units (text::split_text). Choices
/// become quick replies on the last part ({content_type:"text", title: label,
/// payload}) when there are at most max_quick_replies, each with a title of 1..20
/// and a payload of 1..1000 units; otherwise the text gets the numbered sentence
/// (text::with_numbered_menu) and no quick replies. Choices without text get the
/// text "Choose one:". Empty when there is nothing to say.
std::vector<std::string> render_reply(std::string_view psid,
                                      const ::parley::bot::v1::Outbound& message,
                                      sender_role role = sender_role::bot);

/// Whether `message`'s choices go out as quick replies (see render_reply).
bool fits_quick_replies(const ::parley::bot::v1::Outbound& message);

/// `{"recipient":{"id":psid},"sender_action":"typing_on"}`.
std::string typing_on(std::string_view psid);

/// The messaging window: the bot may answer for 24 hours after the user's last
/// message; a human agent (HUMAN_AGENT tag) for 7 days (Meta's documentation).
inline constexpr std::int64_t bot_window_ms = 24LL * 3600 * 1000;
inline constexpr std::int64_t agent_window_ms = 7LL * 24 * 3600 * 1000;

/// Whether a reply may be sent now. nullopt: allowed; else the reason ("no
/// message from the user yet", "the user's last message is 25 h old; the bot may
/// answer within 24 h"). A last message in the future (clock skew) counts as now.
std::optional<std::string> check_window(std::optional<std::int64_t> last_user_message_ms,
                                        std::int64_t now_ms, sender_role role);

/// What the Send API answered.
struct send_answer {
  bool accepted = false;  ///< a 2xx with a message_id
  std::string recipient_id;
  std::string message_id;
  std::optional<std::int64_t> error_code;     ///< error.code
  std::optional<std::int64_t> error_subcode;  ///< error.error_subcode
  std::string error_type;                     ///< error.type
  std::string error_message;                  ///< error.message, else "HTTP <status>"
  std::string fbtrace_id;
};

/// Reads the answer to a send: on 2xx `{recipient_id, message_id}` (400 naming
/// message_id when absent, body when not a JSON object); otherwise the
/// `{"error":{...}}` object when there is one. Never throws.
result<send_answer> parse_send_answer(int http_status, const std::string& body);

}  // namespace parley::channels::messenger
