#include "src/bot/zone.hpp"

#include <date/tz.h>

#include <chrono>
#include <exception>

namespace parley::bot::detail {

namespace {
const date::time_zone* tz_of(const void* p) { return static_cast<const date::time_zone*>(p); }
}  // namespace

std::shared_ptr<const zone> zone::locate(const std::string& name, std::string& why) {
  auto z = std::make_shared<zone>();
  if (name == "UTC" || name.empty()) return z;
  try {
    z->tz_ = date::locate_zone(name);
  } catch (const std::exception&) {
    why = "unknown time zone '" + name +
          "' (an IANA name such as Europe/Paris or America/New_York, or UTC)";
    return nullptr;
  }
  return z;
}

int zone::offset_at(std::int64_t utc_unix) const {
  if (!tz_) return 0;
  auto info = tz_of(tz_)->get_info(date::sys_seconds{std::chrono::seconds{utc_unix}});
  return static_cast<int>(info.offset.count());
}

std::int64_t zone::to_utc(std::int64_t local_unix) const {
  if (!tz_) return local_unix;
  auto info = tz_of(tz_)->get_info(date::local_seconds{std::chrono::seconds{local_unix}});
  // unique, nonexistent and ambiguous alike: `first` is the offset in force
  // before (or at) the wall time, which gives the rule the header states.
  return local_unix - info.first.offset.count();
}

}  // namespace parley::bot::detail
