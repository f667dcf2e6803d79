#pragma once
/// The admin API's change feed: after the Postgres transaction of a key revocation or
/// of a version activation (activate, rollback, deploy with ?activate=true) has
/// committed, the node that ran it publishes one message on its region's Redis
/// channel `parley:<region>:changes`, so that every node of the region drops what it
/// cached at once instead of at its TTL or poll tick (docs/changes.md).
///
/// Postgres stays the truth: a message only says "look again". Redis keeps no
/// message, so a node that was not subscribed when it was published misses it: the
/// listener (actors/changes) then treats every (re)subscription as "everything may
/// have changed", and the caches' TTL and the registry's poll remain the backstop.
///
/// Messages are JSON objects with a `kind`; listeners ignore kinds they do not know
/// (a newer node may publish more):
///   {"kind":"api_key_revoked","tenant":"acme","key_id":42}
///   {"kind":"bot_activated","tenant":"acme","bot":"support","version":3}
///   {"kind":"secrets_changed","tenant":"acme","name":"ORDERS_API_TOKEN"}  (never a value)
///   {"kind":"limits_changed","tenant":"acme"}
///   {"kind":"canary_changed","tenant":"acme","bot":"support","version":4}  (started,
///   promoted, aborted or rolled back: src/store/catalog/canary.hpp)

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace parley::store {
class redis_client;
}

namespace parley::admin {

/// One change other nodes must learn about at once.
struct change {
  enum class kind {
    api_key_revoked,
    bot_activated,
    secrets_changed,
    limits_changed,
    canary_changed
  };
  kind what = kind::api_key_revoked;
  std::string tenant;
  std::string bot;          ///< bot_activated, canary_changed
  std::int64_t key_id = 0;  ///< api_key_revoked
  int version = 0;          ///< bot_activated: the version now active; canary_changed: the canary's
  std::string name = {};    ///< secrets_changed: the secret set or deleted (may be empty)
};

/// "api_key_revoked", "bot_activated", "secrets_changed", "limits_changed" or
/// "canary_changed" (the `kind`
/// label of the listener's metric).
const char* kind_name(change::kind k);

/// The channel of a region: "parley:<region>:changes".
std::string changes_channel(std::string_view region);

/// The message's JSON text.
std::string encode_change(const change& c);

/// The change a message describes; nullopt for a payload that is not JSON, lacks a
/// tenant, or has a kind this node does not know.
std::optional<change> decode_change(std::string_view payload);

/// A hook for admin_options::changed that PUBLISHes each change on `region`'s channel
/// through `redis` (asynchronously; a failure is logged as `change_publish_failed`,
/// and the other nodes then converge at their TTL or poll tick). `redis` must outlive
/// the hook.
std::function<void(const change&)> change_publisher(store::redis_client& redis,
                                                    std::string_view region);

}  // namespace parley::admin
