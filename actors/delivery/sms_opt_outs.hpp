#pragma once
/// The SMS numbers that sent STOP (and no START since), per tenant and conversation
/// address (sms_address: our number and the user's), in the region's Redis: the Twilio
/// gateway writes them, the SMS sender reads them before each reply, whichever node
/// either runs on. One key per opted-out address,
/// `<prefix>:<region>:sms_optout:<tenant>:<address>`, kept until START.
///
/// Any thread; each `done` once, on the Redis client's thread.

#include <functional>
#include <string>

#include "src/common/result.hpp"

namespace parley::store {
class redis_client;
}

namespace parley::actors {

class sms_opt_outs {
 public:
  /// `redis` outlives this object and every call's `done`.
  sms_opt_outs(store::redis_client& redis, std::string key_prefix, std::string region);

  /// STOP (`stop` true) or START for `address`.
  void set(const std::string& tenant, const std::string& address, bool stop,
           std::function<void(result<void>)> done);
  /// Whether `address` sent STOP and no START since.
  void opted_out(const std::string& tenant, const std::string& address,
                 std::function<void(result<bool>)> done);

 private:
  std::string key(const std::string& tenant, const std::string& address) const;
  store::redis_client& redis_;
  std::string prefix_;
};

}  // namespace parley::actors
