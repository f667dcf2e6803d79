#pragma once
/// What the webhook gateways (SMS, Messenger) share: their error answers, their receipts,
/// and the turn
/// of a conversation found by the user's address rather than by a session id the
/// client holds.
///
/// A conversation of such a channel is (tenant, bot, address): `session_keys` maps it
/// to its session, a new one for the first message. The message runs as a turn of that
/// session; when the session never started (the mapping outlived a start that did not
/// commit) it runs again as the session's start (whose first input it is), and when the
/// session has ended the address gets a new session, which the message starts. Each
/// committed turn keeps the mapping as long as the session's snapshot can live. An
/// address seen for the first time starts its session at once.

#include <functional>
#include <string>

#include "actors/runtime/runtime.hpp"
#include "src/common/result.hpp"
#include "src/http/http.hpp"

namespace parley::store {
class postgres_client;
struct message_receipt;
}  // namespace parley::store

namespace parley::actors {

class session_keys;

/// The codecs' refusal (400, 403 or 404 with the field at fault).
http::response webhook_refusal(const error& e);

/// 503 with `Retry-After: 1`.
http::response webhook_retry_later(std::string message);

/// Writes a provider's receipt to `message_receipts` in the background (a failure is
/// logged); nothing when `pg` is null.
void keep_receipt(store::postgres_client* pg, store::message_receipt r);

/// Runs the message `make(start)` builds (its kind `start` when `start`) as the turn of
/// the conversation at `address`; `done` gets the outcome, or the session store's error.
/// `make` fills what the message carries; this fills tenant, bot, session, external key
/// and kind. Any thread; `done` once, on a completion's thread.
void run_addressed_turn(turn_sink& rt, session_keys& keys, const std::string& tenant,
                        const std::string& bot, const std::string& address,
                        std::function<inbound(bool start)> make,
                        std::function<void(result<turn_outcome>)> done);

}  // namespace parley::actors
