#pragma once
/// Delivery of replies to asynchronous channels (SMS, Messenger): the seam between the
/// outbox drain (cluster/node/outbox_drain, which reads the committed outbox and keeps
/// the order and the retries) and the channels' senders (channel_delivery.hpp, which
/// turn one reply into the provider's API calls).
///
/// No CAF: any thread calls, `done` runs once on any thread and must be short.

#include <chrono>
#include <functional>
#include <string>

#include "src/proto/runtime.pb.h"

namespace parley::actors {

/// What became of one reply's delivery.
struct delivery_result {
  enum class kind {
    delivered,  ///< the provider accepted it
    retry,      ///< try again later (provider unavailable, 429, 5xx, timeout)
    failed,     ///< the provider refused it for good (4xx): dead letter
    refused,    ///< the channel's policy refused it (STOP, the 24-hour window): dead letter
  };
  kind k = kind::failed;
  std::chrono::milliseconds retry_after{0};  ///< retry: the provider's Retry-After, if any
  std::string reason;                        ///< for failures; never holds a secret
  static delivery_result ok() { return {kind::delivered, {}, {}}; }
};

/// Delivers reply `index` of `entry`; index `messages_size()` (an entry with a
/// `handoff`) records the handoff. `idempotency_key` is the same for every attempt
/// at the same reply (it goes to the provider as a header where the provider reads one).
using deliver_fn = std::function<void(const parley::runtime::v1::OutboxEntry& entry, int index,
                                      const std::string& idempotency_key,
                                      std::function<void(delivery_result)> done)>;

}  // namespace parley::actors
