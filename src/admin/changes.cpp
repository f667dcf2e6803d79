#include "src/admin/changes.hpp"

#include <nlohmann/json.hpp>

#include "src/log/log.hpp"
#include "src/store/redis.hpp"

namespace parley::admin {
namespace {

/// `j[name]` when it is a string, else "" (json::value throws on another type).
std::string text(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

const char* kind_name(change::kind k) {
  switch (k) {
    case change::kind::api_key_revoked:
      return "api_key_revoked";
    case change::kind::bot_activated:
      return "bot_activated";
    case change::kind::secrets_changed:
      return "secrets_changed";
    case change::kind::limits_changed:
      return "limits_changed";
    case change::kind::canary_changed:
      return "canary_changed";
  }
  return "unknown";
}

std::string changes_channel(std::string_view region) {
  std::string ch = "parley:";
  ch += region;
  ch += ":changes";
  return ch;
}

std::string encode_change(const change& c) {
  nlohmann::json j = {{"kind", kind_name(c.what)}, {"tenant", c.tenant}};
  if (c.what == change::kind::api_key_revoked) {
    j["key_id"] = c.key_id;
  } else if (c.what == change::kind::secrets_changed) {
    if (!c.name.empty()) j["name"] = c.name;
  } else if (c.what == change::kind::limits_changed) {
  } else {
    j["bot"] = c.bot;
    j["version"] = c.version;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<change> decode_change(std::string_view payload) {
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto kind = text(j, "kind");
  change c;
  c.tenant = text(j, "tenant");
  if (c.tenant.empty()) return std::nullopt;
  if (kind == "api_key_revoked") {
    c.what = change::kind::api_key_revoked;
    if (auto it = j.find("key_id"); it != j.end() && it->is_number_integer())
      c.key_id = it->get<std::int64_t>();
    return c;
  }
  if (kind == "secrets_changed") {
    c.what = change::kind::secrets_changed;
    c.name = text(j, "name");
    return c;
  }
  if (kind == "limits_changed") {
    c.what = change::kind::limits_changed;
    return c;
  }
  if (kind == "bot_activated" || kind == "canary_changed") {
    c.what = kind == "bot_activated" ? change::kind::bot_activated : change::kind::canary_changed;
    c.bot = text(j, "bot");
    if (auto it = j.find("version"); it != j.end() && it->is_number_integer())
      c.version = it->get<int>();
    return c;
  }
  return std::nullopt;
}

std::function<void(const change&)> change_publisher(store::redis_client& redis,
                                                    std::string_view region) {
  return [&redis, channel = changes_channel(region)](const change& c) {
    redis.command({"PUBLISH", channel, encode_change(c)},
                  [kind = kind_name(c.what), tenant = c.tenant](result<store::redis_reply> r) {
                    if (!r)
                      log::warn("change_publish_failed",
                                {{"kind", kind}, {"tenant", tenant}, {"error", r.err().message}});
                  });
  };
}

}  // namespace parley::admin
