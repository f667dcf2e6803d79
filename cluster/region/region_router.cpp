#include "cluster/region/region_router.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "cluster/endpoint/codec.hpp"
#include "cluster/endpoint/endpoint.hpp"
#include "src/log/log.hpp"
#include "src/metrics/metrics.hpp"

namespace parley::cluster {
namespace {

using clock = std::chrono::steady_clock;

/// Where a tenant lives, as far as this node knows.
struct home {
  enum class kind { here, there, nowhere } k = kind::nowhere;
  std::string region;  ///< for `there`
};

/// What an error answer names of the request it answers (the request itself may have
/// been moved into a RegionRequest by then).
struct origin {
  std::string path;
  std::string request_id;
};

http::response generic_unavailable(const std::string& message, const std::string&,
                                   const std::string&) {
  auto res = http::response::error(503, "region_unavailable", message);
  res.headers.emplace_back("Retry-After", "1");
  return res;
}

}  // namespace

struct region_router::impl : std::enable_shared_from_this<impl> {
  deps d;
  region_options o;
  std::unique_ptr<endpoint> ep;  ///< the connections to peer regions; null when there are none

  /// A peer region and the connection this node keeps to one of its nodes.
  struct peer {
    settings::peer_region config;
    std::string node;      ///< the endpoint's name for the connected node; empty: none
    std::size_t next = 0;  ///< the endpoint tried first next time
    bool warned = false;   ///< the failure to connect was logged (once per outage)
    prometheus::Gauge* connected = nullptr;
    prometheus::Counter* answered = nullptr;     ///< forwarded requests it answered
    prometheus::Counter* unavailable = nullptr;  ///< forwarded requests answered 503
  };
  struct cached_home {
    home h;
    clock::time_point expires;
  };

  std::mutex m;
  std::condition_variable wake;
  bool stopping = false;
  bool started = false;
  bool retry_now = false;  ///< a peer was lost: connect again without waiting
  std::thread connector;
  std::vector<peer> peers;
  std::unordered_map<std::string, cached_home> cache;
  std::unordered_map<std::string, std::vector<std::function<void(result<home>)>>> pending;

  /// parley_region_lookups_total by result: here, elsewhere, nowhere, failed.
  prometheus::Counter* lookups[4] = {};
  prometheus::Counter* served = nullptr;

  impl(deps dd, region_options oo) : d(std::move(dd)), o(std::move(oo)) {
    for (auto& p : o.peers) {
      peers.emplace_back();
      peers.back().config = p;
    }
    if (d.metrics == nullptr) return;
    auto& reg = *d.metrics;
    const char* lookups_help =
        "Lookups of a tenant's home region, by result (here, elsewhere, nowhere, failed).";
    const char* results[] = {"here", "elsewhere", "nowhere", "failed"};
    for (int k = 0; k < 4; ++k)
      lookups[k] = &metrics::counter(reg, "parley_region_lookups_total", lookups_help,
                                     {{"result", results[k]}});
    served = &metrics::counter(reg, "parley_region_requests_served_total",
                               "Requests that nodes of peer regions forwarded to this node.");
    // Every sample is made here, once: a request only increments one.
    const char* forwarded_help =
        "Channel requests forwarded to their tenant's home region, by region and outcome "
        "(answered, unavailable).";
    for (auto& p : peers) {
      const auto& name = p.config.name;
      p.connected = &metrics::gauge(reg, "parley_region_peer_connected",
                                    "Whether this node has a connection to a node of the peer "
                                    "region (1) or not (0).",
                                    {{"region", name}});
      p.answered = &metrics::counter(reg, "parley_region_requests_forwarded_total", forwarded_help,
                                     {{"region", name}, {"outcome", "answered"}});
      p.unavailable =
          &metrics::counter(reg, "parley_region_requests_forwarded_total", forwarded_help,
                            {{"region", name}, {"outcome", "unavailable"}});
    }
  }

  void count_lookup(const result<home>& h) {
    int k = !h ? 3 : h->k == home::kind::here ? 0 : h->k == home::kind::there ? 1 : 2;
    if (lookups[k]) lookups[k]->Increment();
  }
  /// `region` is a configured peer (forward() is only called with one); the counters
  /// were made in the constructor and never change, so no lock.
  void count_forward(const std::string& region, bool answered) {
    for (const auto& p : peers)
      if (p.config.name == region) {
        auto* c = answered ? p.answered : p.unavailable;
        if (c) c->Increment();
      }
  }

  std::optional<home> cached(const std::string& tenant) {
    std::lock_guard<std::mutex> lock(m);
    auto it = cache.find(tenant);
    if (it == cache.end()) return std::nullopt;
    if (it->second.expires <= clock::now()) {
      cache.erase(it);
      return std::nullopt;
    }
    return it->second.h;
  }

  /// Ends the lookup of `tenant`: remembers a found answer, then answers every waiter.
  void settle(const std::string& tenant, result<home> h) {
    std::vector<std::function<void(result<home>)>> waiters;
    {
      std::lock_guard<std::mutex> lock(m);
      auto it = pending.find(tenant);
      if (it != pending.end()) {
        waiters = std::move(it->second);
        pending.erase(it);
      }
      if (h) {
        auto now = clock::now();
        if (cache.size() >= o.max_cached) {
          for (auto c = cache.begin(); c != cache.end();)
            c = c->second.expires <= now ? cache.erase(c) : std::next(c);
          if (cache.size() >= o.max_cached) cache.clear();  // a flood of unknown orgs
        }
        auto ttl = h->k == home::kind::nowhere ? o.unknown_ttl : o.home_ttl;
        cache[tenant] = cached_home{*h, now + ttl};
      }
    }
    count_lookup(h);
    for (auto& w : waiters) w(h);
  }

  /// Finds where `tenant` lives: this region's Postgres, then every peer region.
  void lookup(const std::string& tenant, std::function<void(result<home>)> done) {
    {
      std::lock_guard<std::mutex> lock(m);
      auto& waiting = pending[tenant];
      waiting.push_back(std::move(done));
      if (waiting.size() > 1) return;  // a lookup is under way
    }
    auto self = shared_from_this();
    d.tenant_here(tenant, [self, tenant](result<bool> here) {
      if (!here)
        return self->settle(
            tenant, make_error("unavailable", "this region's catalog cannot be read to find org '" +
                                                  tenant + "': " + here.err().message));
      if (*here) return self->settle(tenant, home{home::kind::here, {}});
      self->ask_peers(tenant);
    });
  }

  void ask_peers(const std::string& tenant) {
    struct round {
      std::mutex m;
      std::size_t left = 0;
      bool found = false;
      std::vector<std::string> failed;
    };
    auto r = std::make_shared<round>();
    std::vector<std::pair<std::string, std::string>> targets;  // region, node
    {
      std::lock_guard<std::mutex> lock(m);
      for (const auto& p : peers) {
        if (p.node.empty())
          r->failed.push_back(p.config.name + " (no connection)");
        else
          targets.emplace_back(p.config.name, p.node);
      }
      r->left = targets.size();
    }
    auto self = shared_from_this();
    auto finish = [self, tenant, r] {  // under no lock; after the last answer
      if (r->found) return;
      if (r->failed.empty()) return self->settle(tenant, home{home::kind::nowhere, {}});
      std::string which;
      for (const auto& f : r->failed) which += (which.empty() ? "" : ", ") + f;
      self->settle(tenant, make_error("unavailable", "the home region of org '" + tenant +
                                                         "' cannot be found: region " + which +
                                                         " cannot be asked; retry"));
    };
    if (targets.empty()) return finish();
    region_request q;
    q.from_region = o.region;
    q.tenant_query = tenant;
    std::string bytes = encode_region_request(q);
    for (const auto& [region, node] : targets) {
      ep->call_region(
          node, bytes, [self, tenant, r, region = region, finish](result<std::string> answer) {
            result<region_answer> a =
                answer ? decode_region_answer(*answer) : result<region_answer>(answer.err());
            bool last = false, mine = false;
            {
              std::lock_guard<std::mutex> lock(r->m);
              if (!a)
                r->failed.push_back(region + " (" + a.err().message + ")");
              else if (!a->error.empty())
                r->failed.push_back(region + " (" + a->error + ")");
              else if (a->tenant_home && !r->found)
                r->found = mine = true;
              last = --r->left == 0;
            }
            if (mine) self->settle(tenant, home{home::kind::there, region});
            if (last) finish();
          });
    }
  }

  std::string node_of(const std::string& region) {
    std::lock_guard<std::mutex> lock(m);
    for (const auto& p : peers)
      if (p.config.name == region) return p.node;
    return {};
  }

  void forward(const std::string& region, const std::string& tenant, http::request&& req,
               http::responder reply, const unavailable_renderer& unavailable) {
    std::string node = node_of(region);
    origin from{req.path, req.request_id};
    if (node.empty()) {
      count_forward(region, false);
      return reply(unavailable("org '" + tenant + "' lives in region '" + region +
                                   "', which this node (region '" + o.region +
                                   "') cannot reach now: retry",
                               from.path, from.request_id));
    }
    region_request q;
    q.from_region = o.region;
    q.http = std::move(req);
    auto self = shared_from_this();
    ep->call_region(node, encode_region_request(q),
                    [self, region, reply, from, unavailable](result<std::string> answer) {
                      result<region_answer> a = answer ? decode_region_answer(*answer)
                                                       : result<region_answer>(answer.err());
                      std::string why = !a                  ? a.err().message
                                        : !a->error.empty() ? a->error
                                        : !a->http          ? "no HTTP answer"
                                                            : "";
                      if (!why.empty()) {
                        self->count_forward(region, false);
                        return reply(unavailable("region '" + region + "': " + why, from.path,
                                                 from.request_id));
                      }
                      self->count_forward(region, true);
                      a->http->headers.emplace_back("X-Parley-Region", region);
                      reply(std::move(*a->http));
                    });
  }

  void peer_down(const std::string& node) {
    std::lock_guard<std::mutex> lock(m);
    for (auto& p : peers)
      if (p.node == node) {
        p.node.clear();
        p.next = (p.next + 1) % p.config.endpoints.size();
        if (p.connected) p.connected->Set(0);
        log::warn("region_peer_lost", {{"region", p.config.name}, {"node", node}});
        retry_now = true;
      }
    wake.notify_all();
  }

  /// The connection thread: keeps one connection per peer region.
  void run() {
    std::unique_lock<std::mutex> lock(m);
    while (!stopping) {
      for (auto& p : peers) {
        if (!p.node.empty() || p.config.endpoints.empty()) continue;
        auto endpoints = p.config.endpoints;
        std::size_t first = p.next;
        lock.unlock();  // connect blocks
        std::string connected;
        std::size_t at = first;
        std::string why;
        for (std::size_t k = 0; k < endpoints.size() && connected.empty(); ++k) {
          at = (first + k) % endpoints.size();
          const auto& [host, port] = endpoints[at];
          std::string name = p.config.name + "@" + host + ":" + std::to_string(port);
          if (auto c = ep->connect(name, host, port); c.ok())
            connected = name;
          else
            why = c.err().message;
        }
        lock.lock();
        if (stopping) break;
        if (!connected.empty()) {
          p.node = connected;
          p.next = at;
          p.warned = false;
          if (p.connected) p.connected->Set(1);
          log::info("region_peer_connected", {{"region", p.config.name}, {"node", connected}});
        } else if (!p.warned) {
          p.warned = true;
          log::warn("region_peer_unreachable", {{"region", p.config.name}, {"error", why}});
        }
      }
      wake.wait_for(lock, o.reconnect, [this] { return stopping || retry_now; });
      retry_now = false;
    }
  }
};

region_router::region_router(deps d, region_options o)
    : impl_(std::make_shared<impl>(std::move(d), std::move(o))) {
  if (impl_->peers.empty()) return;  // serves peers' requests only: nothing to connect
  endpoint::handlers h;
  std::weak_ptr<impl> weak = impl_;
  h.peer_down = [weak](const std::string& node) {
    if (auto i = weak.lock()) i->peer_down(node);
  };
  impl_->ep = std::make_unique<endpoint>(*impl_->d.system, std::move(h), impl_->o.timeout);
}

region_router::~region_router() { stop(); }

void region_router::start() {
  std::lock_guard<std::mutex> lock(impl_->m);
  if (impl_->started || impl_->peers.empty()) return;
  impl_->started = true;
  impl_->connector = std::thread([i = impl_.get()] { i->run(); });
}

void region_router::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->m);
    if (impl_->stopping) return;
    impl_->stopping = true;
    impl_->wake.notify_all();
  }
  if (impl_->connector.joinable()) impl_->connector.join();
  if (impl_->ep) impl_->ep->stop();
}

bool region_router::connected(const std::string& region) const {
  return !impl_->node_of(region).empty();
}

std::vector<std::pair<std::string, std::string>> region_router::peers() const {
  std::lock_guard<std::mutex> lock(impl_->m);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& p : impl_->peers) {
    auto at = p.node.find('@');  // "<region>@host:port"
    out.emplace_back(p.config.name, at == std::string::npos ? "" : p.node.substr(at + 1));
  }
  return out;
}

http::handler region_router::front(http::handler local,
                                   std::function<std::string(const http::request&)> tenant_of,
                                   unavailable_renderer unavailable) {
  auto i = impl_;
  if (!unavailable) unavailable = generic_unavailable;
  return [i, local = std::move(local), tenant_of = std::move(tenant_of),
          unavailable = std::move(unavailable)](http::request&& req, http::responder reply) {
    std::string tenant = tenant_of(req);
    if (tenant.empty()) return local(std::move(req), std::move(reply));
    if (auto known = i->cached(tenant)) {
      if (known->k != home::kind::there) return local(std::move(req), std::move(reply));
      return i->forward(known->region, tenant, std::move(req), std::move(reply), unavailable);
    }
    auto held = std::make_shared<http::request>(std::move(req));
    i->lookup(tenant, [i, local, held, tenant, reply, unavailable](result<home> h) {
      if (!h) return reply(unavailable(h.err().message, held->path, held->request_id));
      if (h->k == home::kind::there)
        return i->forward(h->region, tenant, std::move(*held), reply, unavailable);
      local(std::move(*held), reply);
    });
  };
}

void region_router::serve(std::string bytes, std::function<void(std::string answer)> done) {
  auto i = impl_;
  auto q = decode_region_request(bytes);
  region_answer a;
  a.region = i->o.region;
  if (!q) {
    a.error = q.err().message;
    return done(encode_region_answer(a));
  }
  if (q->http) {
    if (i->served) i->served->Increment();
    auto responder = http::responder::to([a, done](http::response res) mutable {
      a.http = std::move(res);
      done(encode_region_answer(a));
    });
    return i->d.serve(std::move(*q->http), std::move(responder));
  }
  i->d.tenant_here(q->tenant_query, [a, done](result<bool> here) mutable {
    if (!here)
      a.error = "its catalog cannot be read: " + here.err().message;
    else
      a.tenant_home = *here;
    done(encode_region_answer(a));
  });
}

}  // namespace parley::cluster
