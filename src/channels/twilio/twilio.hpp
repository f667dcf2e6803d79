#pragma once
/// parley::channels::twilio — the codec of the SMS channel through Twilio
/// (Programmable Messaging), as `../shared/protocols.md` ("Twilio SMS") describes.
///
/// Pure functions: no I/O, no clock, callable from any thread. Parse and verify
/// functions accept any bytes and never throw (but std::bad_alloc); a refusal is a
/// `parley::error` (see src/channels/errors.hpp: `http_status` gives 400 or 403)
/// whose message names the parameter or header at fault and never holds a secret.
///
/// Typical use by the gateway, for `POST <url>` with a form body:
///
///     auto params = text::parse_form(req.body);                       // 400
///     if (!params) return respond(400, params.err());
///     auto ok = twilio::verify_signature(auth_token, configured_url, *params,
///                                        req.header("X-Twilio-Signature"));  // 403
///     if (!ok) return respond(403, ok.err());
///     auto in = twilio::parse_inbound(*params);                         // 400
///     // dedup on in->message_sid, accept durably, then answer:
///     respond(200, twilio::twiml_content_type, twilio::twiml_empty);
///
/// Replies: `render_sms` gives the bodies of the messages for one outbound
/// message (choices as numbered text, see src/channels/text/menu.hpp), and
/// `send_form`, `messages_url` and `basic_auth` make the REST request for each.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/channels/text/form.hpp"
#include "src/common/result.hpp"
#include "src/proto/bot.pb.h"

namespace parley::channels::twilio {

// ------------------------------------------------------------------ signature

/// X-Twilio-Signature for a request to `url` with POST parameters `params`:
/// base64(HMAC-SHA1(auth_token, url + each name and value)), the pairs sorted by
/// name, then value, in byte order. The URL is taken exactly as given (scheme,
/// host as configured, case kept, path, raw query). For a GET webhook `params` is
/// empty (its parameters are in the URL).
std::string compute_signature(std::string_view auth_token, std::string_view url,
                              const text::form& params);

/// Checks `signature` (the X-Twilio-Signature header, empty when absent) in
/// constant time against compute_signature for `url` and, as Twilio's SDKs do,
/// for `url` with the scheme's default port (":443" for https, ":80" for http)
/// added when it has no port, or removed when it has that one. Another port is
/// never removed. Fails with 403 "X-Twilio-Signature: missing" or "... does not
/// match the request"; an empty `auth_token` matches nothing.
result<void> verify_signature(std::string_view auth_token, std::string_view url,
                              const text::form& params, std::string_view signature);

/// For webhooks with a JSON body: Twilio signs the URL alone, and the URL's query
/// carries `bodySHA256=<hex SHA-256 of the body>`. Checks both (403 naming
/// "bodySHA256" when the body's digest differs or is absent).
result<void> verify_signature_json(std::string_view auth_token, std::string_view url,
                                   std::string_view body, std::string_view signature);

// ------------------------------------------------------------------ inbound

/// One media item of an MMS: MediaUrl{N} and MediaContentType{N}.
struct media_item {
  std::string url;
  std::string content_type;  ///< may be empty
};

enum class inbound_kind {
  message,  ///< a message from a user
  status,   ///< a status callback about a message we sent (it has MessageStatus)
};

/// A webhook's parameters that Parley uses. Text fields are well-formed UTF-8
/// (ill-formed bytes replaced by U+FFFD after the signature was checked).
struct inbound {
  inbound_kind kind = inbound_kind::message;
  std::string message_sid;  ///< MessageSid, else SmsSid: the deduplication key
  std::string account_sid;
  std::string messaging_service_sid;  ///< may be empty
  std::string from;                   ///< the user (E.164) for a message; us for a status
  std::string to;
  std::string body;  ///< may be empty (an MMS without text)
  std::vector<media_item> media;
  std::string message_status;              ///< status: queued, sent, delivered, failed, ...
  std::optional<std::int64_t> error_code;  ///< status: ErrorCode when present
};

/// At most this many media per message (Twilio's own limit is 10).
inline constexpr int max_media = 10;

/// Reads a webhook's parameters. A status callback is recognised by its
/// MessageStatus (an inbound message carries SmsStatus=received, never
/// MessageStatus). Required: MessageSid or SmsSid and AccountSid (1..64 ASCII
/// letters and digits), for a message From and To, for a status MessageStatus.
/// NumMedia, when present, is 0..max_media and each MediaUrl{N} below it is
/// required. A required parameter that is repeated is refused. Failures: 400
/// naming the parameter ("NumMedia: must be an integer 0..10").
result<inbound> parse_inbound(const text::form& params);

// ------------------------------------------------------------------ opt-out

enum class keyword {
  none,   ///< an ordinary message
  stop,   ///< STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT: send nothing more
  start,  ///< START, YES, UNSTOP: the number may be messaged again
  help,   ///< HELP, INFO
};

/// Twilio's standard opt-out/opt-in/help keywords: the whole body is the keyword,
/// ASCII case ignored, blanks around it and one trailing '.' or '!' allowed
/// ("Stop", " STOP! "); "stop sending" is none.
keyword classify_keyword(std::string_view body);

// ------------------------------------------------------------------ replies

/// The TwiML answer with no reply, served with twiml_content_type.
inline constexpr std::string_view twiml_empty =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";
inline constexpr std::string_view twiml_content_type = "text/xml";

/// A TwiML answer with one <Message> (text XML-escaped; characters XML 1.0 forbids
/// dropped, ill-formed UTF-8 replaced).
std::string twiml_message(std::string_view text);

/// Twilio's limit for one message body, in characters (counted as UTF-16 units,
/// see src/channels/text/split.hpp).
inline constexpr std::size_t max_body_units = 1600;

/// The bodies to send for one outbound message: its text, its choices as the
/// numbered sentence (text::with_numbered_menu), cut into bodies of at most
/// max_body_units (text::split_text). Empty when there is nothing to say.
std::vector<std::string> render_sms(const ::parley::bot::v1::Outbound& message);

// ------------------------------------------------------------------ REST API

inline constexpr std::string_view default_api_base = "https://api.twilio.com";

/// `{api_base}/2010-04-01/Accounts/{account_sid}/Messages.json`, the SID
/// percent-encoded; a trailing '/' of api_base is dropped.
std::string messages_url(std::string_view api_base, std::string_view account_sid);

/// "Basic " + base64(user + ":" + password): the account SID and auth token (or an
/// API key SID and secret). The value is a secret: never log it.
std::string basic_auth(std::string_view user, std::string_view password);

/// A message to send through the Messages API.
struct send_request {
  std::string to;
  std::string from;                   ///< or messaging_service_sid
  std::string messaging_service_sid;  ///< used when set, instead of from
  std::string body;
  std::vector<std::string> media_urls;
  std::string status_callback;  ///< may be empty
};

/// The form body (To, From or MessagingServiceSid, Body, MediaUrl..., StatusCallback;
/// empty ones left out). 400 naming the field: To missing, neither From nor
/// MessagingServiceSid, neither Body nor MediaUrl, Body over max_body_units.
result<std::string> send_form(const send_request& req);

/// What the Messages API answered.
struct send_answer {
  bool accepted = false;  ///< a 2xx with a message sid
  std::string sid;
  std::string status;                      ///< queued, accepted, sending, sent, failed, ...
  std::optional<std::int64_t> error_code;  ///< error_code of a message, code of an error
  std::string error_message;               ///< error_message, or message of an error
  std::string more_info;                   ///< an error's documentation URL
};

/// Reads the answer to a send: on 2xx the message JSON (400 naming "sid" when it
/// has none, "body" when it is not a JSON object); otherwise the error JSON
/// `{code, message, more_info, status}`, or, when the body is not that, an answer
/// whose error_message is "HTTP <status>". Never throws.
result<send_answer> parse_send_answer(int http_status, const std::string& body);

}  // namespace parley::channels::twilio
