#pragma once
/// The senders of asynchronous channels: one reply of an outbox entry (delivery.hpp)
/// becomes the provider's API calls.
/// - `sms`: Twilio's Messages API, one call per body (src/channels/twilio render_sms:
///   choices as the numbered sentence, text cut at 1,600 characters), with the tenant
///   secrets `twilio.account_sid` and `twilio.auth_token`; the conversation's address
///   is `sms_address(our number, the user's number)`. A number that sent STOP gets
///   nothing (`refused`, "the recipient opted out with STOP") until it sends START.
/// - `messenger`: the Send API (src/channels/messenger render_reply: quick replies, or
///   numbered text), with the tenant secret `messenger.page_token`; the address is
///   `messenger_address(page id, the user's PSID)`. A reply outside the 24-hour window
///   is refused with its reason.
/// - `directline`: the `directline` function (the Direct Line gateway's log), for the
///   turns of a web chat conversation that the agent API started.
/// Outcomes: a 2xx is `delivered`; 429, 5xx and transport failures are `retry` (with
/// the provider's Retry-After); other 4xx are `failed` with the provider's error code
/// and message. Replies of a conversation split into several calls are sent one call
/// after another; a retry sends the reply again from its first call.
///
/// No CAF, no blocking: the HTTP calls and secret lookups are the functions given.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "actors/delivery/delivery.hpp"
#include "actors/delivery/sms_opt_outs.hpp"
#include "actors/secrets/secret_cache.hpp"
#include "src/common/result.hpp"
#include "src/http/client.hpp"

namespace parley::actors {

/// "<our number>|<the user's number>": an SMS conversation's external key.
std::string sms_address(std::string_view ours, std::string_view user);
/// The two numbers of an sms_address; nullopt when it is not one.
std::optional<std::pair<std::string, std::string>> parse_sms_address(std::string_view address);
/// "<page id>|<PSID>": a Messenger conversation's external key.
std::string messenger_address(std::string_view page, std::string_view psid);

struct channel_delivery_options {
  std::string twilio_api_base = "https://api.twilio.com";
  std::string messenger_api_base = "https://graph.facebook.com/v19.0";
  /// Where Twilio reports the status of each message sent (delivery receipts); empty:
  /// none asked for.
  std::function<std::string(const parley::runtime::v1::OutboxEntry&)> sms_status_callback;
  /// Performs one HTTP request; `done` once, any thread.
  std::function<void(http::client_request, std::function<void(result<http::client_response>)>)>
      send;
  /// The tenant's secrets (actors/secrets/secret_cache.hpp).
  secret_lookup secret;
  /// The SMS numbers that sent STOP; null: nobody did.
  sms_opt_outs* opt_outs = nullptr;
  std::chrono::milliseconds timeout{10000};  ///< per HTTP call
  /// Records an entry's handoff (its turn handed the conversation to an agent), once
  /// per entry however often it is called; `done` once, any thread. Empty: handoffs
  /// are only logged.
  std::function<void(const parley::runtime::v1::OutboxEntry&, std::function<void(delivery_result)>)>
      handoff;
  /// Delivers a reply of a Direct Line conversation (directline_gateway.hpp). Empty: such
  /// replies fail ("no sender for channel directline").
  deliver_fn directline;
};

/// A deliver_fn for the channels above; any other channel's replies fail ("no sender
/// for channel X").
deliver_fn make_channel_delivery(channel_delivery_options o);

}  // namespace parley::actors
