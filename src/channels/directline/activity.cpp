// Posted activities, rendered activities, ActivitySets and the other answers.

#include <ctime>

#include "src/channels/directline/directline.hpp"
#include "src/channels/errors.hpp"
#include "src/channels/json/reader.hpp"
#include "src/channels/json/writer.hpp"

namespace parley::channels::directline {

namespace {

using jvalue = json::value;

constexpr int max_json_depth = 32;

/// Writes a parsed value back as compact JSON: the value the client sent, so
/// channelData comes back as it went out (member order kept, repeated keys kept).
/// Returns the value after `v` in the document.
const jvalue* write_json(std::string& out, const jvalue& v) {
  switch (v.type()) {
    case jvalue::kind::null:
      json::lit(out, "null");
      break;
    case jvalue::kind::boolean:
      json::append_bool(out, v.boolean());
      break;
    case jvalue::kind::integer:
      json::append_int(out, v.int64());
      break;
    case jvalue::kind::unsigned_integer:
      out += std::to_string(v.uint64());
      break;
    case jvalue::kind::floating:
      json::append_number(out, v.number());
      break;
    case jvalue::kind::string:
      json::append_string(out, v.str());
      break;
    case jvalue::kind::array:
    case jvalue::kind::object: {
      bool obj = v.is_object();
      out += obj ? '{' : '[';
      const jvalue* m = v.first();
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i > 0) out += ',';
        if (obj) {
          json::append_string(out, m->key());
          out += ':';
        }
        m = write_json(out, *m);
      }
      out += obj ? '}' : ']';
      break;
    }
  }
  return v.next();
}

std::string to_json(const jvalue& v) {
  std::string out;
  write_json(out, v);
  return out;
}

result<void> opt_string(const jvalue& obj, std::string_view name, std::string_view path,
                        std::string& out) {
  const jvalue* v = obj.member(name);
  if (v == nullptr || v->is_null()) return {};
  if (!v->is_string()) return bad(path, "must be a string");
  out = v->str();
  return {};
}

void conversation_member(std::string& out, std::string_view conversation_id) {
  json::lit(out, ",\"conversation\":{\"id\":");
  json::append_string(out, conversation_id);
  out += '}';
}

/// `"type":...,"timestamp":...,"channelId":"directline","from":{bot}` — the start of
/// every activity the bot sends.
void bot_head(std::string& out, std::string_view type, std::string_view bot,
              std::string_view conversation_id, std::int64_t now_ms) {
  json::lit(out, "{\"type\":");
  json::append_string(out, type);
  json::lit(out, ",\"timestamp\":");
  json::append_string(out, timestamp(now_ms));
  json::lit(out, ",\"channelId\":\"directline\",\"from\":{\"id\":");
  json::append_string(out, bot);
  json::lit(out, ",\"name\":");
  json::append_string(out, bot);
  json::lit(out, ",\"role\":\"bot\"}");
  conversation_member(out, conversation_id);
}

}  // namespace

result<activity> parse_activity(std::string_view body) {
  if (body.size() > max_activity_bytes) return bad("body", "larger than 256 KiB");
  if (json::nested_deeper_than(body, max_json_depth)) return bad("body", "nested too deeply");
  json::document doc;
  if (!json::read(body, body.size(), doc)) return bad("body", "not JSON");
  const jvalue& root = doc.root();
  if (!root.is_object()) return bad("body", "must be an activity object");
  activity a;
  const jvalue* type = root.member("type");
  if (type == nullptr || !type->is_string()) return bad("type", "required string");
  a.type = type->str();
  if (a.type != "message" && a.type != "event" && a.type != "typing")
    return bad("type", "must be message, event or typing");
  if (auto r = opt_string(root, "text", "text", a.text); !r) return r.err();
  if (auto r = opt_string(root, "locale", "locale", a.locale); !r) return r.err();
  if (auto r = opt_string(root, "name", "name", a.name); !r) return r.err();
  if (const jvalue* from = root.member("from"); from != nullptr && !from->is_null()) {
    if (!from->is_object()) return bad("from", "must be an object");
    if (auto r = opt_string(*from, "id", "from.id", a.from_id); !r) return r.err();
    if (auto r = opt_string(*from, "name", "from.name", a.from_name); !r) return r.err();
    if (auto r = opt_string(*from, "role", "from.role", a.from_role); !r) return r.err();
  }
  if (const jvalue* cd = root.member("channelData"); cd != nullptr && !cd->is_null()) {
    a.channel_data = to_json(*cd);
    if (cd->is_object())
      if (const jvalue* id = cd->member("clientActivityID"); id != nullptr && id->is_string())
        a.client_activity_id = id->str();
  }
  if (const jvalue* v = root.member("value"); v != nullptr && !v->is_null()) {
    a.value = to_json(*v);
    if (v->is_string()) a.value_text = v->str();
  }
  if (const jvalue* att = root.member("attachments"); att != nullptr && !att->is_null()) {
    if (!att->is_array()) return bad("attachments", "must be an array");
    if (att->size() > max_attachments) return bad("attachments", "more than 16");
    const jvalue* e = att->first();
    for (std::size_t i = 0; i < att->size(); ++i, e = e->next()) {
      std::string where = "attachments[" + std::to_string(i) + "]";
      if (!e->is_object()) return bad(where, "must be an object");
      attachment x;
      if (auto r = opt_string(*e, "contentType", where + ".contentType", x.content_type); !r)
        return r.err();
      if (auto r = opt_string(*e, "contentUrl", where + ".contentUrl", x.content_url); !r)
        return r.err();
      if (auto r = opt_string(*e, "name", where + ".name", x.name); !r) return r.err();
      if (x.content_type.empty()) return bad(where + ".contentType", "required string");
      a.attachments.push_back(std::move(x));
    }
  }
  return a;
}

std::string activity_id(std::string_view conversation_id, std::uint64_t index) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%07llu", static_cast<unsigned long long>(index));
  std::string id(conversation_id);
  id += '|';
  id += digits;
  return id;
}

std::string with_id(std::string_view stored, std::string_view id) {
  std::string out;
  out.reserve(stored.size() + id.size() + 8);
  json::lit(out, "{\"id\":");
  json::append_string(out, id);
  if (stored.size() > 2) out += ',';  // not "{}"
  if (!stored.empty()) out.append(stored.substr(1));
  return out;
}

std::string timestamp(std::int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(((unix_ms % 1000) + 1000) % 1000));
  return buf;
}

std::string render_user_echo(const activity& a, std::string_view conversation_id,
                             std::int64_t now_ms) {
  std::string out;
  json::lit(out, "{\"type\":");
  json::append_string(out, a.type);
  json::lit(out, ",\"timestamp\":");
  json::append_string(out, timestamp(now_ms));
  json::lit(out, ",\"channelId\":\"directline\",\"from\":{\"id\":");
  json::append_string(out, a.from_id.empty() ? "user" : a.from_id);
  if (!a.from_name.empty()) {
    json::lit(out, ",\"name\":");
    json::append_string(out, a.from_name);
  }
  json::lit(out, ",\"role\":\"user\"}");
  conversation_member(out, conversation_id);
  if (!a.text.empty()) {
    json::lit(out, ",\"text\":");
    json::append_string(out, a.text);
  }
  if (!a.locale.empty()) {
    json::lit(out, ",\"locale\":");
    json::append_string(out, a.locale);
  }
  if (!a.name.empty()) {
    json::lit(out, ",\"name\":");
    json::append_string(out, a.name);
  }
  if (!a.attachments.empty()) {
    json::lit(out, ",\"attachments\":[");
    for (std::size_t i = 0; i < a.attachments.size(); ++i) {
      const auto& x = a.attachments[i];
      if (i > 0) out += ',';
      json::lit(out, "{\"contentType\":");
      json::append_string(out, x.content_type);
      if (!x.content_url.empty()) {
        json::lit(out, ",\"contentUrl\":");
        json::append_string(out, x.content_url);
      }
      if (!x.name.empty()) {
        json::lit(out, ",\"name\":");
        json::append_string(out, x.name);
      }
      out += '}';
    }
    out += ']';
  }
  if (!a.value.empty()) {
    json::lit(out, ",\"value\":");
    out += a.value;
  }
  if (!a.channel_data.empty()) {
    json::lit(out, ",\"channelData\":");
    out += a.channel_data;
  }
  out += '}';
  return out;
}

std::string render_bot_message(const bot_message& m, std::string_view bot,
                               std::string_view conversation_id, std::string_view reply_to_id,
                               std::int64_t now_ms) {
  std::string out;
  bot_head(out, "message", bot, conversation_id, now_ms);
  json::lit(out, ",\"text\":");
  json::append_string(out, m.text);
  json::lit(out, ",\"textFormat\":\"plain\"");
  if (!reply_to_id.empty()) {
    json::lit(out, ",\"replyToId\":");
    json::append_string(out, reply_to_id);
  }
  if (!m.choices.empty()) {
    json::lit(out, ",\"suggestedActions\":{\"actions\":[");
    for (std::size_t i = 0; i < m.choices.size(); ++i) {
      if (i > 0) out += ',';
      json::lit(out, "{\"type\":\"imBack\",\"title\":");
      json::append_string(out, m.choices[i]);
      json::lit(out, ",\"value\":");
      json::append_string(out, m.choices[i]);
      out += '}';
    }
    json::lit(out, "]}");
  }
  out += '}';
  return out;
}

std::string render_typing(std::string_view bot, std::string_view conversation_id,
                          std::int64_t now_ms) {
  std::string out;
  bot_head(out, "typing", bot, conversation_id, now_ms);
  out += '}';
  return out;
}

std::string render_end_of_conversation(std::string_view bot, std::string_view conversation_id,
                                       std::int64_t now_ms) {
  std::string out;
  bot_head(out, "endOfConversation", bot, conversation_id, now_ms);
  json::lit(out, ",\"code\":\"completedSuccessfully\"}");
  return out;
}

std::string render_activity_set(const std::vector<std::string>& activities,
                                std::uint64_t watermark) {
  std::size_t n = 40;
  for (const auto& a : activities) n += a.size() + 1;
  std::string out;
  out.reserve(n);
  json::lit(out, "{\"activities\":[");
  for (std::size_t i = 0; i < activities.size(); ++i) {
    if (i > 0) out += ',';
    out += activities[i];
  }
  json::lit(out, "],\"watermark\":\"");
  out += std::to_string(watermark);
  json::lit(out, "\"}");
  return out;
}

std::string render_token(std::string_view conversation_id, std::string_view token,
                         std::int64_t expires_in) {
  std::string out;
  json::lit(out, "{\"conversationId\":");
  json::append_string(out, conversation_id);
  json::lit(out, ",\"token\":");
  json::append_string(out, token);
  json::lit(out, ",\"expires_in\":");
  json::append_int(out, expires_in);
  out += '}';
  return out;
}

std::string render_conversation(std::string_view conversation_id, std::string_view token,
                                std::int64_t expires_in, std::string_view stream_url) {
  std::string out;
  json::lit(out, "{\"conversationId\":");
  json::append_string(out, conversation_id);
  json::lit(out, ",\"token\":");
  json::append_string(out, token);
  if (expires_in >= 0) {
    json::lit(out, ",\"expires_in\":");
    json::append_int(out, expires_in);
  }
  json::lit(out, ",\"streamUrl\":");
  json::append_string(out, stream_url);
  out += '}';
  return out;
}

std::string render_resource(std::string_view id) {
  std::string out;
  json::lit(out, "{\"id\":");
  json::append_string(out, id);
  out += '}';
  return out;
}

http::response error_response(int status, std::string_view code, std::string_view message) {
  return http::response::error(status, code, message);
}

}  // namespace parley::channels::directline
