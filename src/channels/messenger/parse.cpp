// Webhook POSTs: the batch and each of its events.

#include "src/channels/errors.hpp"
#include "src/channels/json/reader.hpp"
#include "src/channels/messenger/messenger.hpp"

namespace parley::channels::messenger {

namespace {

using jvalue = json::value;

constexpr int max_json_depth = 32;

// Reads the fields of one messaging item; the first field of a wrong type stops
// it with `problem` set.
class item_reader {
 public:
  item_reader(event& e, std::string where) : e_(e), where_(std::move(where)) {}

  bool failed() const { return !e_.problem.empty(); }

  // A required id: a string, or an unsigned integer written as digits.
  bool id(const jvalue& obj, std::string_view name, std::string& out) {
    const jvalue* o = obj.member(name);
    const jvalue* v = o != nullptr && o->is_object() ? o->member("id") : nullptr;
    if (v != nullptr && v->is_string() && !v->str().empty()) {
      out = v->str();
      return true;
    }
    if (v != nullptr && v->is_number_unsigned()) {
      out = std::to_string(v->uint64());
      return true;
    }
    return fail(std::string(name) + ".id", "required string");
  }

  bool opt_string(const jvalue& obj, std::string_view name, std::string_view path,
                  std::string& out) {
    const jvalue* v = obj.member(name);
    if (v == nullptr || v->is_null()) return true;
    if (!v->is_string()) return fail(path, "must be a string");
    out = v->str();
    return true;
  }

  bool opt_integer(const jvalue& obj, std::string_view name, std::string_view path,
                   std::int64_t& out) {
    const jvalue* v = obj.member(name);
    if (v == nullptr || v->is_null()) return true;
    if (!v->is_number_integer()) return fail(path, "must be an integer");
    out = v->int64();
    return true;
  }

  // An optional object member; nullptr when absent or null.
  bool opt_object(const jvalue& obj, std::string_view name, std::string_view path,
                  const jvalue*& out) {
    out = obj.member(name);
    if (out != nullptr && out->is_null()) out = nullptr;
    if (out != nullptr && !out->is_object()) return fail(path, "must be an object");
    return true;
  }

  bool fail(std::string_view path, std::string_view what) {
    e_.kind = event_kind::invalid;
    e_.problem = where_;
    e_.problem.append(".").append(path).append(": ").append(what);
    return false;
  }

 private:
  event& e_;
  std::string where_;
};

void read_message(const jvalue& m, item_reader& r, event& e) {
  const jvalue* echo = m.member("is_echo");
  if (echo != nullptr && !echo->is_null() && !echo->is_boolean()) {
    r.fail("message.is_echo", "must be a boolean");
    return;
  }
  e.kind = echo != nullptr && echo->is_boolean() && echo->boolean() ? event_kind::echo
                                                                    : event_kind::message;
  if (!r.opt_string(m, "mid", "message.mid", e.mid) ||
      !r.opt_string(m, "text", "message.text", e.text))
    return;
  const jvalue* qr = nullptr;
  if (!r.opt_object(m, "quick_reply", "message.quick_reply", qr)) return;
  if (qr != nullptr) {
    const jvalue* p = qr->member("payload");
    if (p == nullptr || !p->is_string()) {
      r.fail("message.quick_reply.payload", "required string");
      return;
    }
    e.quick_reply_payload = std::string(p->str());
  }
  const jvalue* list = m.member("attachments");
  if (list == nullptr || list->is_null()) return;
  if (!list->is_array()) {
    r.fail("message.attachments", "must be an array");
    return;
  }
  const jvalue* a = list->first();
  for (std::size_t i = 0; i < list->size(); ++i, a = a->next()) {
    const std::string path = "message.attachments[" + std::to_string(i) + "]";
    if (!a->is_object()) {
      r.fail(path, "must be an object");
      return;
    }
    attachment att;
    const jvalue* payload = nullptr;
    if (!r.opt_string(*a, "type", path + ".type", att.type) ||
        !r.opt_object(*a, "payload", path + ".payload", payload))
      return;
    if (payload != nullptr && !r.opt_string(*payload, "url", path + ".payload.url", att.url))
      return;
    e.attachments.push_back(std::move(att));
  }
}

void read_delivery(const jvalue& d, item_reader& r, event& e) {
  e.kind = event_kind::delivery;
  if (!r.opt_integer(d, "watermark", "delivery.watermark", e.watermark)) return;
  const jvalue* mids = d.member("mids");
  if (mids == nullptr || mids->is_null()) return;
  if (!mids->is_array()) {
    r.fail("delivery.mids", "must be an array");
    return;
  }
  const jvalue* m = mids->first();
  for (std::size_t i = 0; i < mids->size(); ++i, m = m->next()) {
    if (!m->is_string()) {
      r.fail("delivery.mids[" + std::to_string(i) + "]", "must be a string");
      return;
    }
    e.mids.emplace_back(m->str());
  }
}

event read_item(const jvalue& item, const std::string& page_id, std::string where, bool standby) {
  event e;
  e.page_id = page_id;
  if (!item.is_object()) {
    e.kind = event_kind::invalid;
    e.problem = where + ": must be an object";
    return e;
  }
  item_reader r(e, std::move(where));
  if (!r.id(item, "sender", e.sender_id) || !r.id(item, "recipient", e.recipient_id) ||
      !r.opt_integer(item, "timestamp", "timestamp", e.timestamp))
    return e;
  if (standby) {
    e.kind = event_kind::unknown;
    e.problem = "standby";
    return e;
  }
  const jvalue* part = nullptr;
  if (!r.opt_object(item, "message", "message", part)) return e;
  if (part != nullptr) {
    read_message(*part, r, e);
    return e;
  }
  if (!r.opt_object(item, "postback", "postback", part)) return e;
  if (part != nullptr) {
    e.kind = event_kind::postback;
    if (r.opt_string(*part, "payload", "postback.payload", e.payload) &&
        r.opt_string(*part, "title", "postback.title", e.title))
      r.opt_string(*part, "mid", "postback.mid", e.mid);
    return e;
  }
  if (!r.opt_object(item, "delivery", "delivery", part)) return e;
  if (part != nullptr) {
    read_delivery(*part, r, e);
    return e;
  }
  if (!r.opt_object(item, "read", "read", part)) return e;
  if (part != nullptr) {
    e.kind = event_kind::read;
    r.opt_integer(*part, "watermark", "read.watermark", e.watermark);
    return e;
  }
  e.kind = event_kind::unknown;
  const jvalue* m = item.first();
  for (std::size_t i = 0; i < item.size(); ++i, m = m->next())
    if (m->key() != "sender" && m->key() != "recipient" && m->key() != "timestamp") {
      e.problem = m->key();
      break;
    }
  return e;
}

}  // namespace

result<webhook> parse_webhook(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos)
    return bad("body", "required JSON object, got an empty body");
  if (json::nested_deeper_than(body, max_json_depth))
    return bad("body", "JSON nested deeper than " + std::to_string(max_json_depth) + " levels");
  json::document doc;
  if (!json::read(body, doc)) return bad("body", "malformed JSON");
  const jvalue& root = doc.root();
  if (!root.is_object()) return bad("body", "must be a JSON object");
  const jvalue* object = root.member("object");
  if (object == nullptr || !object->is_string()) return bad("object", "required string");
  if (object->str() != "page") return refuse(not_found, "object", "must be \"page\"");
  const jvalue* entries = root.member("entry");
  if (entries == nullptr || !entries->is_array()) return bad("entry", "required array");
  webhook w;
  const jvalue* entry = entries->first();
  for (std::size_t i = 0; i < entries->size(); ++i, entry = entry->next()) {
    const std::string where = "entry[" + std::to_string(i) + "]";
    if (!entry->is_object()) return bad(where, "must be an object");
    std::string page_id;
    if (const jvalue* id = entry->member("id")) {
      if (id->is_string())
        page_id = id->str();
      else if (id->is_number_unsigned())
        page_id = std::to_string(id->uint64());
      else if (!id->is_null())
        return bad(where + ".id", "must be a string");
    }
    for (const char* list_name : {"messaging", "standby"}) {
      const jvalue* list = entry->member(list_name);
      if (list == nullptr || list->is_null()) continue;
      const std::string list_where = where + "." + list_name;
      if (!list->is_array()) return bad(list_where, "must be an array");
      if (w.events.size() + list->size() > max_events)
        return bad("entry", "more than " + std::to_string(max_events) + " events in one POST");
      const jvalue* item = list->first();
      for (std::size_t j = 0; j < list->size(); ++j, item = item->next())
        w.events.push_back(read_item(*item, page_id, list_where + "[" + std::to_string(j) + "]",
                                     list_name[0] == 's'));
    }
  }
  return w;
}

}  // namespace parley::channels::messenger
