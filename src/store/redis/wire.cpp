#include "src/store/redis/wire.hpp"

#include <hiredis/hiredis.h>

#include <openssl/evp.h>

#include <array>
#include <cstdlib>
#include <utility>

namespace parley::store {

namespace detail {

namespace {

// hiredis' reader builds each reply through these functions (its "reply object
// functions"), straight into redis_reply: its own tree would cost two allocations and
// two frees per reply plus a copy into redis_reply. The elements of an array are sized
// when its header is read, so their addresses stay valid while the reader fills them.

redis_reply* reply_object(const redisReadTask* task) {
  if (task->parent == nullptr) {
    auto* root = static_cast<redis_reply*>(task->privdata);
    *root = redis_reply{};  // the previous reply was moved out, or abandoned on an error
    return root;
  }
  auto* parent = static_cast<redis_reply*>(task->parent->obj);
  return &parent->elements[static_cast<std::size_t>(task->idx)];
}

void* create_string(const redisReadTask* task, char* str, size_t len) {
  auto* r = reply_object(task);
  r->type = task->type == REDIS_REPLY_ERROR    ? redis_reply::kind::error
            : task->type == REDIS_REPLY_STATUS ? redis_reply::kind::status
                                               : redis_reply::kind::string;
  r->str.assign(str, len);
  return r;
}

void* create_array(const redisReadTask* task, int elements) {
  auto* r = reply_object(task);
  r->type = redis_reply::kind::array;
  r->elements.resize(static_cast<std::size_t>(elements));
  return r;
}

void* create_integer(const redisReadTask* task, long long value) {
  auto* r = reply_object(task);
  r->type = redis_reply::kind::integer;
  r->integer = value;
  return r;
}

void* create_nil(const redisReadTask* task) {
  auto* r = reply_object(task);
  r->type = redis_reply::kind::nil;
  return r;
}

// Nothing to free: every object is the slot or inside it.
void free_object(void*) {}

redisReplyObjectFunctions functions = {create_string, create_array, create_integer, create_nil,
                                       free_object};

}  // namespace

redisReplyObjectFunctions* reply_functions() { return &functions; }

void append_array_header(std::string& out, std::size_t n) {
  auto old = out.size();
  out.resize(old + header_size(n));
  put_header(out.data() + old, '*', n);
}

void append_bulk(std::string& out, std::string_view a) {
  auto old = out.size();
  out.resize(old + bulk_size(a.size()));
  put_bulk(out.data() + old, a);
}

error bad_command_error() {
  return make_error("redis_bad_command", "a Redis command needs at least one argument");
}

error unavailable_error(const std::string& shown_url, const std::string& why) {
  return make_error("redis_unavailable", "Redis at " + shown_url + " is unavailable: " + why);
}

error shutting_down_error(const std::string& shown_url) {
  return make_error("redis_unavailable", "Redis client for " + shown_url + " is shutting down");
}

error timeout_error(const std::string& shown_url, std::chrono::milliseconds timeout) {
  return make_error("redis_timeout", "Redis at " + shown_url + " did not answer within " +
                                         std::to_string(timeout.count()) + " ms");
}

namespace {
constexpr std::string_view replied = "Redis replied: ";
}

result<redis_reply> command_result(redis_reply&& r) {
  if (r.type == redis_reply::kind::error)
    return make_error("redis_error", std::string(replied) + r.str);
  return std::move(r);
}

bool is_noscript(const result<redis_reply>& r) {
  if (r) return false;
  const auto& e = r.err();
  return e.code == "redis_error" &&
         e.message.compare(0, replied.size() + 8, std::string(replied) + "NOSCRIPT") == 0;
}

std::string handshake_commands(const redis_endpoint& ep, const std::vector<redis_script>& scripts,
                               int& count) {
  std::string out;
  count = 0;
  auto add = [&](std::initializer_list<std::string_view> args) {
    append_wire(out, args);
    ++count;
  };
  if (!ep.password.empty()) {
    if (ep.username.empty())
      add({"AUTH", ep.password});
    else
      add({"AUTH", ep.username, ep.password});
  }
  std::string db = std::to_string(ep.db);
  if (ep.db != 0) add({"SELECT", db});
  for (const auto& s : scripts) add({"SCRIPT", "LOAD", s.source()});
  return out;
}

std::string redact(std::string_view url) {
  std::string out(url);
  auto scheme = out.find("://");
  if (scheme == std::string::npos) return out;
  auto start = scheme + 3;
  auto at = out.find('@', start);
  if (at == std::string::npos || at > out.find('/', start)) return out;
  auto colon = out.find(':', start);
  auto from = colon != std::string::npos && colon < at ? colon + 1 : start;
  out.replace(from, at - from, "***");
  return out;
}

}  // namespace detail

struct redis_script::data {
  std::string source;
  std::string sha1;
};

redis_script::redis_script(std::string source) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(source.data(), source.size(), md.data(), &len, EVP_sha1(), nullptr) != 1)
    std::abort();  // SHA-1 is always available in OpenSSL: an internal failure
  static constexpr char hex[] = "0123456789abcdef";
  std::string sha;
  sha.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    sha.push_back(hex[md[i] >> 4]);
    sha.push_back(hex[md[i] & 15]);
  }
  data_ = std::make_shared<const data>(data{std::move(source), std::move(sha)});
}

const std::string& redis_script::source() const { return data_->source; }

const std::string& redis_script::sha1() const { return data_->sha1; }

}  // namespace parley::store
