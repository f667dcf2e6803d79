#include "actors/delivery/sms_opt_outs.hpp"

#include "src/store/redis.hpp"

namespace parley::actors {

sms_opt_outs::sms_opt_outs(store::redis_client& redis, std::string key_prefix, std::string region)
    : redis_(redis), prefix_(key_prefix + ":" + region + ":sms_optout:") {}

std::string sms_opt_outs::key(const std::string& tenant, const std::string& address) const {
  return prefix_ + tenant + ":" + address;
}

void sms_opt_outs::set(const std::string& tenant, const std::string& address, bool stop,
                       std::function<void(result<void>)> done) {
  std::vector<std::string> c{stop ? "SET" : "DEL", key(tenant, address)};
  if (stop) c.push_back("1");
  redis_.command(std::move(c), [done = std::move(done)](result<store::redis_reply> x) {
    if (!x) return done(x.err());
    done({});
  });
}

void sms_opt_outs::opted_out(const std::string& tenant, const std::string& address,
                             std::function<void(result<bool>)> done) {
  redis_.command({"EXISTS", key(tenant, address)},
                 [done = std::move(done)](result<store::redis_reply> x) {
                   if (!x) return done(x.err());
                   done(x->integer == 1);
                 });
}

}  // namespace parley::actors
