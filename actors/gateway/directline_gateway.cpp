#include "actors/gateway/directline_gateway.hpp"

#include <openssl/rand.h>

#include <mutex>
#include <unordered_map>

#include "actors/gateway/directline_log.hpp"
#include "actors/gateway/session_keys.hpp"
#include "actors/limits/attachment_gate.hpp"
#include "actors/runtime/runtime.hpp"
#include "src/channels/crypto/crypto.hpp"
#include "src/channels/directline/directline.hpp"
#include "src/common/clock.hpp"
#include "src/log/log.hpp"
#include "src/store/redis.hpp"

namespace parley::actors {
namespace {

namespace dl = channels::directline;
using status = turn_outcome::status;

constexpr std::string_view conversations_prefix = "/v3/directline/conversations/";

std::string random_key() {
  unsigned char b[12];
  RAND_bytes(b, sizeof b);
  return dl::base64url(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
}

void add_cors(http::response& r) {
  r.headers.emplace_back("Access-Control-Allow-Origin", "*");
  r.headers.emplace_back("Access-Control-Allow-Headers",
                         "Authorization, Content-Type, X-Requested-With, x-ms-bot-agent");
  r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  r.headers.emplace_back("Access-Control-Max-Age", "600");
}

/// A responder that adds the CORS headers to whatever answers.
http::responder with_cors(http::responder reply) {
  return http::responder::to([reply](http::response r) {
    add_cors(r);
    reply(std::move(r));
  });
}

http::response dl_error(int status, std::string_view code, std::string_view message) {
  return dl::error_response(status, code, message);
}

/// The tenant's secrets cannot be read now (Postgres down, nothing cached): the client
/// retries; its secret is not judged wrong.
http::response secrets_unavailable(const error& e) {
  auto r = dl_error(503, "ServiceError", "tenant secrets are unavailable: " + e.message);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

/// Who a request speaks for.
struct caller {
  std::string tenant, bot;
  std::string conversation;  ///< a token's; empty for a secret
  std::string token;         ///< the token presented; empty for a secret
  bool secret = false;
};

/// One open stream of a conversation on this node.
struct stream_state {
  std::string tenant, conversation, bot;
  http::websocket ws;
  std::uint64_t sent = 0;  // the watermark the socket has reached; under the gateway's mutex
  bool fetching = false;
  bool again = false;
};

struct gateway : std::enable_shared_from_this<gateway> {
  directline_gateway_options opts;
  directline_log activity_log;
  std::mutex m;
  std::unordered_map<std::string, std::shared_ptr<stream_state>> streams;

  attachment_probe gate;

  explicit gateway(directline_gateway_options o)
      : opts(std::move(o)),
        activity_log(*opts.redis, {opts.key_prefix, opts.redis_lanes, opts.node}),
        gate(opts.metrics) {}

  /// 400 naming the first attachment of `a` the limits refuse (every refused one is
  /// counted); nullopt when all pass. Attachments without a contentUrl link nothing
  /// and are not checked.
  std::optional<http::response> refuse_attachments(const dl::activity& a,
                                                   const channels::text::attachment_limits& l) {
    std::vector<channels::text::attachment_ref> refs;
    std::vector<std::size_t> at;  // the position in a.attachments of each ref
    for (std::size_t i = 0; i < a.attachments.size(); ++i) {
      if (a.attachments[i].content_url.empty()) continue;
      refs.push_back({a.attachments[i].content_url, a.attachments[i].content_type});
      at.push_back(i);
    }
    std::optional<http::response> out;
    for (const auto& v : channels::text::check_attachments(l, refs)) {
      if (!v.refused) continue;
      gate.refused("directline", *v.refused);
      if (out) continue;
      std::string field = "attachments[" + std::to_string(at[v.index]) + "]";
      if (*v.refused == channels::text::refusal::content_type)
        field += ".contentType";
      else if (*v.refused != channels::text::refusal::too_many)
        field += ".contentUrl";
      out = dl_error(400, "BadArgument", field + ": " + v.detail);
    }
    return out;
  }

  static std::string stream_key(const std::string& tenant, const std::string& conversation) {
    return tenant + '\n' + conversation;
  }

  std::int64_t now_unix() const { return common::now_unix_ms() / 1000; }

  std::string token_for(const caller& c, const std::string& conversation) const {
    return dl::sign_token({c.tenant, c.bot, conversation, now_unix() + opts.token_ttl.count()},
                          opts.token_key);
  }

  /// Authenticates the bearer credential, then calls `next` (on whatever thread answered).
  void authenticate(const std::string& bearer, http::responder reply,
                    std::function<void(caller)> next) {
    if (opts.token_key.empty())
      return reply(dl_error(503, "ServiceError",
                            "Direct Line is not configured on this node (no token key)"));
    if (bearer.empty())
      return reply(
          dl_error(403, "Forbidden", "Authorization: a Bearer secret or token is required"));
    if (dl::is_secret(bearer)) {
      auto s = dl::parse_secret(bearer);
      if (!s) return reply(dl_error(403, "Forbidden", s.err().message));
      if (!opts.tenant_secret)
        return reply(dl_error(403, "Forbidden", "Authorization: the secret is not valid"));
      auto claims = std::make_shared<dl::secret_claims>(std::move(*s));
      opts.tenant_secret(
          claims->tenant, "directline." + claims->bot,
          [claims, bearer, reply,
           next = std::move(next)](result<std::optional<std::string>> stored) {
            if (!stored) return reply(secrets_unavailable(stored.err()));
            if (!*stored || (*stored)->empty() ||
                !channels::crypto::equal_constant_time(**stored, bearer))
              return reply(dl_error(403, "Forbidden", "Authorization: the secret is not valid"));
            caller c;
            c.tenant = claims->tenant;
            c.bot = claims->bot;
            c.secret = true;
            next(std::move(c));
          });
      return;
    }
    auto t = dl::verify_token(bearer, opts.token_key, now_unix());
    if (!t) {
      if (t.err().code == dl::token_expired)
        return reply(dl_error(403, dl::token_expired, "Authorization: the token has expired"));
      return reply(dl_error(403, "Forbidden", t.err().message));
    }
    caller c;
    c.tenant = std::move(t->tenant);
    c.bot = std::move(t->bot);
    c.conversation = std::move(t->conversation);
    c.token = bearer;
    next(std::move(c));
  }

  static std::string stream_url(const http::request& req, const std::string& conversation,
                                const std::string& token, std::uint64_t watermark) {
    const std::string* host = req.header("Host");
    const std::string* proto = req.header("X-Forwarded-Proto");
    std::string url = proto != nullptr && *proto == "https" ? "wss://" : "ws://";
    url += host != nullptr ? *host : "127.0.0.1";
    url += conversations_prefix;
    url += conversation;
    url += "/stream?t=";
    url += token;  // base64url and '.': nothing to escape
    if (watermark > 0) url += "&watermark=" + std::to_string(watermark);
    return url;
  }

  static std::optional<http::response> outcome_error(const turn_outcome& out) {
    switch (out.st) {
      case status::ok:
      case status::replayed:
        return std::nullopt;
      case status::session_not_found:
      case status::session_ended:
        return dl_error(404, "NotFound",
                        out.message.empty() ? "the conversation has ended" : out.message);
      case status::bot_not_found:
        return dl_error(404, "NotFound",
                        out.message.empty() ? "the bot is not deployed" : out.message);
      case status::bad_input:
      case status::stale_sequence:
        return dl_error(400, "BadArgument", out.message);
      case status::unavailable:
        return dl_error(503, "ServiceError", out.message);
      case status::busy:
        return dl_error(429, "TooManyRequests", out.message);
      case status::awaiting_transfer:
        return dl_error(409, "BotRejectedActivity", out.message);
      case status::internal:
        break;
    }
    return dl_error(502, "BotError", out.message.empty() ? "the bot failed" : out.message);
  }

  /// The bot's part of a turn, as stored activities; `"replyToId":"#"` marks where the
  /// log puts the group's first id.
  static std::vector<std::string> bot_activities(const turn_outcome& out, const std::string& bot,
                                                 const std::string& conversation, bool reply_to) {
    std::vector<std::string> v;
    if (!out.result) return v;
    auto now = common::now_unix_ms();
    for (const auto& m : out.result->messages()) {
      dl::bot_message bm;
      bm.text = m.text();
      for (const auto& c : m.choices()) bm.choices.push_back(c.label());
      v.push_back(dl::render_bot_message(bm, bot, conversation, reply_to ? "#" : "", now));
    }
    if (out.result->state().status() == bot::v1::ENDED)
      v.push_back(dl::render_end_of_conversation(bot, conversation, now));
    return v;
  }

  std::chrono::seconds log_ttl(const turn_outcome& out) const {
    return out.program ? out.program->idle_timeout() : opts.default_log_ttl;
  }

  // ---------------------------------------------------------------- streams

  /// Sends the stream of (tenant, conversation) what the log holds past its watermark.
  void push(const std::string& tenant, const std::string& conversation) {
    std::shared_ptr<stream_state> st;
    {
      std::lock_guard<std::mutex> lock(m);
      auto it = streams.find(stream_key(tenant, conversation));
      if (it == streams.end()) return;
      st = it->second;
    }
    fetch(st);
  }

  void fetch(const std::shared_ptr<stream_state>& st) {
    std::uint64_t from;
    {
      std::lock_guard<std::mutex> lock(m);
      if (st->fetching) {
        st->again = true;
        return;
      }
      st->fetching = true;
      from = st->sent;
    }
    activity_log.read(st->tenant, st->conversation, from,
                      [self = shared_from_this(), st](result<directline_log::page> p) {
                        bool again;
                        {
                          std::lock_guard<std::mutex> lock(self->m);
                          st->fetching = false;
                          again = st->again;
                          st->again = false;
                          if (p && !p->activities.empty()) {
                            st->ws.send_text(dl::render_activity_set(p->activities, p->watermark));
                            st->sent = p->watermark;
                          }
                        }
                        if (!p)
                          log::warn("directline_stream_read_failed",
                                    {{"tenant", st->tenant}, {"error", p.err().message}});
                        if (again) self->fetch(st);
                      });
  }

  void typing(const std::string& tenant, const std::string& conversation, const std::string& bot) {
    std::lock_guard<std::mutex> lock(m);
    auto it = streams.find(stream_key(tenant, conversation));
    if (it == streams.end()) return;
    std::string a = dl::with_id(dl::render_typing(bot, conversation, common::now_unix_ms()),
                                conversation + "|typing");
    // No watermark: a typing activity is not in the log.
    it->second->ws.send_text("{\"activities\":[" + a + "]}");
  }

  void open_stream(http::request&& req, http::upgrade up, std::string conversation) {
    if (opts.token_key.empty())
      return up.reject(with_cors_response(dl_error(
          503, "ServiceError", "Direct Line is not configured on this node (no token key)")));
    auto t = dl::query_param(req.query, "t");
    std::string bearer = t ? *t : dl::bearer_of(req);
    auto v = dl::verify_token(bearer, opts.token_key, now_unix());
    if (!v)
      return up.reject(dl_error(
          403, v.err().code == dl::token_expired ? "TokenExpired" : "Forbidden", v.err().message));
    if (v->conversation != conversation)
      return up.reject(dl_error(403, "Forbidden", "the token is for another conversation"));
    auto wm = dl::watermark_of(req.query);
    if (!wm) return up.reject(dl_error(400, "BadArgument", "watermark: must be a number"));
    auto st = std::make_shared<stream_state>();
    st->tenant = v->tenant;
    st->conversation = conversation;
    st->bot = v->bot;
    st->sent = *wm;
    std::weak_ptr<gateway> weak = shared_from_this();
    std::weak_ptr<stream_state> wst = st;
    http::websocket_handlers h;
    h.on_message = [](std::string) {};  // clients send empty keep-alives; nothing to do
    h.on_close = [weak, wst] {
      auto self = weak.lock();
      auto s = wst.lock();
      if (!self || !s) return;
      std::lock_guard<std::mutex> lock(self->m);
      auto it = self->streams.find(stream_key(s->tenant, s->conversation));
      if (it != self->streams.end() && it->second == s) self->streams.erase(it);
    };
    // Outside the mutex: a socket that closes at once calls on_close inline.
    auto ws = up.accept(std::move(h));
    std::shared_ptr<stream_state> old;
    {
      std::lock_guard<std::mutex> lock(m);
      st->ws = ws;
      auto key = stream_key(st->tenant, conversation);
      if (!ws.open()) return;
      auto& slot = streams[key];
      old = std::move(slot);
      slot = st;
    }
    if (old) old->ws.close();  // one socket per conversation: the newest wins
    // This node holds the stream from now on: appends made on other nodes tell it.
    // Recorded before the replay, so an append between the two is not missed.
    activity_log.attach_stream(st->tenant, conversation,
                               [self = shared_from_this(), st](result<void> r) {
                                 if (!r)
                                   log::warn("directline_stream_attach_failed",
                                             {{"tenant", st->tenant}, {"error", r.err().message}});
                                 self->fetch(st);
                               });
  }

  /// Every stream of this node reads what it has not sent (after a lost subscription).
  void push_all() {
    std::vector<std::shared_ptr<stream_state>> all;
    {
      std::lock_guard<std::mutex> lock(m);
      for (auto& [k, st] : streams) all.push_back(st);
    }
    for (auto& st : all) fetch(st);
  }

  static http::response with_cors_response(http::response r) {
    add_cors(r);
    return r;
  }

  // ---------------------------------------------------------------- REST

  void generate(http::request&& req, http::responder reply) {
    authenticate(dl::bearer_of(req), reply, [this, reply](caller c) {
      if (!c.secret)
        return reply(dl_error(403, "Forbidden", "Authorization: tokens/generate takes the secret"));
      auto conv = new_session_id();
      reply(http::response::json(
          200, dl::render_token(conv, token_for(c, conv), opts.token_ttl.count())));
    });
  }

  /// tokens/generate for the web chat page: the tenant's secret `directline.<bot>` is
  /// looked up here, never sent to the browser.
  void mint_for_page(const std::string& tenant, const std::string& bot, http::responder reply) {
    if (opts.token_key.empty())
      return reply(dl_error(503, "ServiceError",
                            "Direct Line is not configured on this node (no token key)"));
    std::string disabled =
        "web chat is not enabled for bot " + bot + ": set the tenant secret directline." + bot;
    if (!opts.tenant_secret) return reply(dl_error(404, "NotFound", disabled));
    opts.tenant_secret(
        tenant, "directline." + bot,
        [self = shared_from_this(), tenant, bot, disabled,
         reply](result<std::optional<std::string>> stored) {
          if (!stored) return reply(secrets_unavailable(stored.err()));
          if (!*stored || (*stored)->empty()) return reply(dl_error(404, "NotFound", disabled));
          caller c;
          c.tenant = tenant;
          c.bot = bot;
          c.secret = true;
          auto conv = new_session_id();
          reply(http::response::json(
              200, dl::render_token(conv, self->token_for(c, conv), self->opts.token_ttl.count())));
        });
  }

  void refresh(http::request&& req, http::responder reply) {
    authenticate(dl::bearer_of(req), reply, [this, reply](caller c) {
      if (c.secret)
        return reply(dl_error(403, "Forbidden", "Authorization: tokens/refresh takes a token"));
      reply(http::response::json(200, dl::render_token(c.conversation, token_for(c, c.conversation),
                                                       opts.token_ttl.count())));
    });
  }

  void start(http::request&& req, http::responder reply) {
    auto r = std::make_shared<http::request>(std::move(req));
    authenticate(dl::bearer_of(*r), reply, [self = shared_from_this(), r, reply](caller c) {
      std::string conv = c.secret ? new_session_id() : c.conversation;
      std::string token = c.secret ? self->token_for(c, conv) : c.token;
      inbound in;
      in.what = inbound::kind::start;
      in.tenant = c.tenant;
      in.bot = c.bot;
      in.channel = "directline";
      in.session_id = conv;
      in.external_key = conv;
      in.message_id = "start";
      in.now_unix = self->now_unix();
      self->opts.rt->submit(std::move(in), [self, r, reply, c, conv, token](turn_outcome out) {
        if (auto err = outcome_error(out)) return reply(std::move(*err));
        int code = out.st == status::replayed ? 200 : 201;
        auto body = dl::render_conversation(conv, token, self->opts.token_ttl.count(),
                                            stream_url(*r, conv, token, 0));
        self->activity_log.append(
            c.tenant, conv, "start", bot_activities(out, c.bot, conv, false), self->log_ttl(out),
            [self, reply, c, conv, code, body](result<directline_log::appended> a) {
              if (!a)
                return reply(dl_error(503, "ServiceError",
                                      "the activity log is unavailable: " + a.err().message));
              if (a->fresh) self->push(c.tenant, conv);
              reply(http::response::json(code, body));
            });
      });
    });
  }

  /// Checks that `c` may speak in `conversation`.
  static std::optional<http::response> forbidden_for(const caller& c,
                                                     const std::string& conversation) {
    if (!c.secret && c.conversation != conversation)
      return dl_error(403, "Forbidden", "the token is for another conversation");
    return std::nullopt;
  }

  void reconnect(http::request&& req, http::responder reply, std::string conversation) {
    auto r = std::make_shared<http::request>(std::move(req));
    authenticate(dl::bearer_of(*r), reply, [this, r, reply, conversation](caller c) {
      if (auto err = forbidden_for(c, conversation)) return reply(std::move(*err));
      auto wm = dl::watermark_of(r->query);
      if (!wm) return reply(dl_error(400, "BadArgument", "watermark: must be a number"));
      std::string token = c.secret ? token_for(c, conversation) : c.token;
      reply(http::response::json(
          200, dl::render_conversation(conversation, token, c.secret ? opts.token_ttl.count() : -1,
                                       stream_url(*r, conversation, token, *wm))));
    });
  }

  void activities(http::request&& req, http::responder reply, std::string conversation) {
    auto query = req.query;
    authenticate(
        dl::bearer_of(req), reply,
        [self = shared_from_this(), query, reply, conversation](caller c) {
          if (auto err = forbidden_for(c, conversation)) return reply(std::move(*err));
          auto wm = dl::watermark_of(query);
          if (!wm) return reply(dl_error(400, "BadArgument", "watermark: must be a number"));
          self->activity_log.read(
              c.tenant, conversation, *wm, [reply](result<directline_log::page> p) {
                if (!p)
                  return reply(dl_error(503, "ServiceError",
                                        "the activity log is unavailable: " + p.err().message));
                reply(http::response::json(200,
                                           dl::render_activity_set(p->activities, p->watermark)));
              });
        });
  }

  void post(http::request&& req, http::responder reply, std::string conversation) {
    auto parsed = dl::parse_activity(req.body);
    if (!parsed) return reply(dl_error(400, "BadArgument", parsed.err().message));
    auto a = std::make_shared<dl::activity>(std::move(*parsed));
    authenticate(
        dl::bearer_of(req), reply, [self = shared_from_this(), a, reply, conversation](caller c) {
          if (auto err = forbidden_for(c, conversation)) return reply(std::move(*err));
          if (a->type != "message")  // typing and events run no turn
            return reply(
                http::response::json(200, dl::render_resource(conversation + "|" + a->type)));
          if (!self->opts.limits) return self->post_message(c, a, reply, conversation, {});
          self->opts.limits(c.tenant,
                            [self, c, a, reply, conversation](channels::text::attachment_limits l) {
                              self->post_message(c, a, reply, conversation, l);
                            });
        });
  }

  void post_message(const caller& c, const std::shared_ptr<dl::activity>& a,
                    const http::responder& reply, const std::string& conversation,
                    const channels::text::attachment_limits& limits) {
    auto self = shared_from_this();
    if (auto err = refuse_attachments(*a, limits)) return reply(std::move(*err));
    {
      inbound in;
      in.what = inbound::kind::text;
      in.tenant = c.tenant;
      in.bot = c.bot;
      in.channel = "directline";
      in.session_id = conversation;
      in.text = !a->text.empty() ? a->text : a->value_text;
      if (in.text.empty()) {
        // Attachments reach the bot as their URLs and types.
        for (const auto& x : a->attachments) {
          if (!in.text.empty()) in.text += '\n';
          in.text += x.content_url.empty() ? x.name : x.content_url;
          in.text += " (" + x.content_type + ")";
        }
      }
      if (in.text.empty())
        return reply(dl_error(400, "BadArgument", "text: required for a message"));
      std::string key =
          a->client_activity_id.empty() ? "r:" + random_key() : "c:" + a->client_activity_id;
      in.message_id = "dl:" + key;
      in.now_unix = self->now_unix();
      self->typing(c.tenant, conversation, c.bot);
      self->opts.rt->submit(
          std::move(in), [self, a, reply, c, conversation, key](turn_outcome out) {
            if (auto err = outcome_error(out)) return reply(std::move(*err));
            std::vector<std::string> group;
            group.push_back(dl::render_user_echo(*a, conversation, common::now_unix_ms()));
            for (auto& b : bot_activities(out, c.bot, conversation, true))
              group.push_back(std::move(b));
            self->activity_log.append(
                c.tenant, conversation, key, group, self->log_ttl(out),
                [self, reply, c, conversation](result<directline_log::appended> r) {
                  if (!r)
                    return reply(dl_error(503, "ServiceError",
                                          "the activity log is unavailable: " + r.err().message));
                  if (r->fresh) self->push(c.tenant, conversation);
                  reply(http::response::json(
                      200, dl::render_resource(dl::activity_id(conversation, r->first))));
                });
          });
    }
  }

  void deliver(const parley::runtime::v1::OutboxEntry& e, int index, const std::string& key,
               std::function<void(delivery_result)> done) {
    const auto& m = e.messages(index);
    dl::bot_message bm;
    bm.text = m.text();
    for (const auto& c : m.choices()) bm.choices.push_back(c.label());
    std::vector<std::string> group{
        dl::render_bot_message(bm, e.bot(), e.session_id(), "", common::now_unix_ms())};
    activity_log.append(
        e.tenant(), e.session_id(), "o:" + key, group, opts.default_log_ttl,
        [self = shared_from_this(), tenant = e.tenant(), conversation = e.session_id(),
         done = std::move(done)](result<directline_log::appended> a) {
          if (!a)
            return done({delivery_result::kind::retry,
                         {},
                         "the Direct Line activity log is unavailable: " + a.err().message});
          if (a->fresh) self->push(tenant, conversation);
          done(delivery_result::ok());
        });
  }

  /// "/v3/directline/conversations/{id}[/rest]" → (id, rest); id empty when malformed.
  static std::pair<std::string, std::string> split(const std::string& path) {
    std::string_view p = path;
    p.remove_prefix(conversations_prefix.size());
    auto slash = p.find('/');
    std::string id(p.substr(0, slash));
    std::string rest = slash == std::string_view::npos ? "" : std::string(p.substr(slash + 1));
    return {id, rest};
  }
};

}  // namespace

void directline_page_token(const std::shared_ptr<void>& directline, const std::string& tenant,
                           const std::string& bot, http::responder reply) {
  static_cast<gateway*>(directline.get())->mint_for_page(tenant, bot, std::move(reply));
}

std::unique_ptr<store::redis_subscription> subscribe_directline_pushes(
    const std::shared_ptr<void>& directline) {
  auto* gw = static_cast<gateway*>(directline.get());
  if (gw->opts.node.empty() || gw->opts.redis == nullptr) return nullptr;
  std::weak_ptr<void> weak = directline;
  store::redis_subscription_handlers h;
  h.message = [weak](const std::string&, const std::string& payload) {
    auto held = weak.lock();
    if (!held) return;
    auto nl = payload.find('\n');
    if (nl == std::string::npos) return;
    static_cast<gateway*>(held.get())->push(payload.substr(0, nl), payload.substr(nl + 1));
  };
  // Messages published while the subscription was down are lost: every stream catches up.
  h.subscribed = [weak] {
    if (auto held = weak.lock()) static_cast<gateway*>(held.get())->push_all();
  };
  h.lost = [](const std::string& why) { log::warn("directline_pushes_lost", {{"error", why}}); };
  return gw->opts.redis->subscribe({gw->activity_log.push_channel(gw->opts.node)}, std::move(h));
}

void directline_deliver(const std::shared_ptr<void>& directline,
                        const parley::runtime::v1::OutboxEntry& entry, int index,
                        const std::string& key, std::function<void(delivery_result)> done) {
  static_cast<gateway*>(directline.get())->deliver(entry, index, key, std::move(done));
}

std::shared_ptr<void> add_directline_routes(http::router& routes,
                                            directline_gateway_options options) {
  if (options.token_key.empty())
    log::warn("directline_disabled",
              {{"hint",
                "set PARLEY_DIRECTLINE_TOKEN_KEY (the same on every node of the region) "
                "to serve Direct Line; its routes answer 503 until then"}});
  auto gw = std::make_shared<gateway>(std::move(options));
  routes.add("POST", "/v3/directline/tokens/generate",
             [gw](http::request&& req, http::responder reply) {
               gw->generate(std::move(req), with_cors(std::move(reply)));
             });
  routes.add("POST", "/v3/directline/tokens/refresh",
             [gw](http::request&& req, http::responder reply) {
               gw->refresh(std::move(req), with_cors(std::move(reply)));
             });
  routes.add("POST", "/v3/directline/conversations",
             [gw](http::request&& req, http::responder reply) {
               gw->start(std::move(req), with_cors(std::move(reply)));
             });
  routes.add_prefix("GET", std::string(conversations_prefix), "/v3/directline/conversations/{id}",
                    [gw](http::request&& req, http::responder reply) {
                      auto cors = with_cors(std::move(reply));
                      auto [id, rest] = gateway::split(req.path);
                      if (id.empty()) return cors(dl_error(404, "NotFound", "no conversation id"));
                      if (rest.empty()) return gw->reconnect(std::move(req), cors, id);
                      if (rest == "activities") return gw->activities(std::move(req), cors, id);
                      cors(dl_error(404, "NotFound", "no route for " + req.path));
                    });
  routes.add_prefix("POST", std::string(conversations_prefix),
                    "/v3/directline/conversations/{id}/activities",
                    [gw](http::request&& req, http::responder reply) {
                      auto cors = with_cors(std::move(reply));
                      auto [id, rest] = gateway::split(req.path);
                      if (id.empty() || rest != "activities")
                        return cors(dl_error(404, "NotFound", "no route for " + req.path));
                      gw->post(std::move(req), cors, id);
                    });
  routes.add_prefix("OPTIONS", "/v3/directline/", "/v3/directline/{preflight}",
                    [](http::request&&, http::responder reply) {
                      http::response r;
                      r.status = 204;
                      r.content_type = "text/plain";
                      add_cors(r);
                      reply(std::move(r));
                    });
  routes.add_upgrade(std::string(conversations_prefix), "/v3/directline/conversations/{id}/stream",
                     [gw](http::request&& req, http::upgrade up) {
                       auto [id, rest] = gateway::split(req.path);
                       if (id.empty() || rest != "stream")
                         return up.reject(dl_error(404, "NotFound", "no stream at " + req.path));
                       gw->open_stream(std::move(req), std::move(up), id);
                     });
  return gw;
}

}  // namespace parley::actors
