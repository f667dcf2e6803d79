/// parley::http::outbound_client against real loopback servers (Beast, port 0, plain
/// and TLS with a certificate made here): keep-alive reuse, the per-host cap, the
/// deadline, DNS failure, size bounds, header validation, TLS verification, the egress
/// policy, the stale-connection retry and shutdown.

#include "src/http/outbound.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/registry.h>

namespace parley::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

/// What the test server does with one request.
struct reply {
  int status = 200;
  std::string body = "ok";
  header_list headers;
  bool never = false;        ///< never answer (until the server stops)
  bool hold = false;         ///< answer once release() is called
  bool close_after = false;  ///< close the connection after answering, without saying so
};

/// A Beast HTTP/1.1 server on 127.0.0.1:0, a thread per connection; optional TLS.
class test_server {
 public:
  using handler = std::function<reply(const bhttp::request<bhttp::string_body>&)>;

  explicit test_server(handler h, net::ssl::context* tls = nullptr)
      : handler_(std::move(h)),
        tls_(tls),
        acceptor_(ioc_, {net::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~test_server() { stop(); }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (stopped_) return;
      stopped_ = true;
      released_ = true;
    }
    cv_.notify_all();
    beast::error_code ec;
    // Wake the accept call with a connection to ourselves, then close.
    {
      tcp::socket s(ioc_);
      s.connect({net::ip::make_address("127.0.0.1"), port_}, ec);
      accept_thread_.join();
    }
    acceptor_.close(ec);
    {
      std::lock_guard<std::mutex> lock(m_);
      for (auto* s : sockets_) {
        s->shutdown(tcp::socket::shutdown_both, ec);
      }
    }
    for (auto& t : threads_) t.join();
  }

  uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/") const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  int connections() {
    std::lock_guard<std::mutex> lock(m_);
    return connections_;
  }
  int requests() {
    std::lock_guard<std::mutex> lock(m_);
    return requests_;
  }
  /// Waits until `n` requests are held (reply::hold) or never answered.
  bool wait_waiting(int n) {
    std::unique_lock<std::mutex> lock(m_);
    return cv_.wait_for(lock, 10s, [&] { return waiting_ >= n; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(m_);
      released_ = true;
    }
    cv_.notify_all();
  }

 private:
  void accept_loop() {
    for (;;) {
      auto sock = std::make_unique<tcp::socket>(ioc_);
      beast::error_code ec;
      acceptor_.accept(*sock, ec);
      std::lock_guard<std::mutex> lock(m_);
      if (stopped_ || ec) return;
      ++connections_;
      sockets_.push_back(sock.get());
      threads_.emplace_back([this, s = std::move(sock)]() mutable { serve(std::move(s)); });
    }
  }

  template <class Stream>
  void session(Stream& stream) {
    beast::flat_buffer buf;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(1 << 20);
      beast::error_code ec;
      bhttp::read(stream, buf, parser, ec);
      if (ec) return;
      auto req = parser.release();
      reply r = handler_(req);
      {
        std::unique_lock<std::mutex> lock(m_);
        ++requests_;
        if (r.never || r.hold) {
          ++waiting_;
          cv_.notify_all();
          cv_.wait(lock, [&] { return stopped_ || (r.hold && released_); });
          if (r.never || stopped_) return;
        }
      }
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), 11};
      for (const auto& [k, v] : r.headers) res.set(k, v);
      res.body() = r.body;
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      bhttp::write(stream, res, ec);
      if (ec || !req.keep_alive() || r.close_after) return;
    }
  }

  void serve(std::unique_ptr<tcp::socket> s) {
    if (tls_ != nullptr) {
      net::ssl::stream<tcp::socket&> stream(*s, *tls_);
      beast::error_code ec;
      stream.handshake(net::ssl::stream_base::server, ec);
      if (!ec) session(stream);
    } else {
      session(*s);
    }
    beast::error_code ec;
    std::lock_guard<std::mutex> lock(m_);
    s->shutdown(tcp::socket::shutdown_both, ec);
    sockets_.erase(std::remove(sockets_.begin(), sockets_.end(), s.get()), sockets_.end());
    s->close(ec);
  }

  handler handler_;
  net::ssl::context* tls_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stopped_ = false;
  bool released_ = false;
  int connections_ = 0;
  int requests_ = 0;
  int waiting_ = 0;
  std::vector<tcp::socket*> sockets_;
  std::list<std::thread> threads_;
};

/// A self-signed certificate (P-256) for `sans` ("DNS:localhost,IP:127.0.0.1"), written as
/// PEM files in a fresh temporary folder.
struct certificate {
  std::string dir, cert, key;
  explicit certificate(const std::string& sans) {
    char tmpl[] = "/tmp/parley-outbound-XXXXXX";
    dir = mkdtemp(tmpl);
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("parley test"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair<int, std::string>{NID_subject_alt_name, sans},
                              {NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
      X509_add_ext(x, ext, -1);
      X509_EXTENSION_free(ext);
    }
    X509_sign(x, pkey, EVP_sha256());
    FILE* f = std::fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
  }
  ~certificate() { std::filesystem::remove_all(dir); }
  net::ssl::context server_context() const {
    net::ssl::context c(net::ssl::context::tls_server);
    c.use_certificate_chain_file(cert);
    c.use_private_key_file(key, net::ssl::context::pem);
    return c;
  }
};

outbound_options loopback_allowed() {
  outbound_options o;
  auto p = egress_policy::make({"127.0.0.0/8", "::1"});
  EXPECT_TRUE(p);
  o.egress = std::move(*p);
  return o;
}

std::unique_ptr<outbound_client> make_client(outbound_options o,
                                             prometheus::Registry* reg = nullptr) {
  auto c = outbound_client::make(std::move(o), reg);
  EXPECT_TRUE(c) << (c ? "" : c.err().message);
  return c ? std::move(*c) : nullptr;
}

/// Sends one request and waits for its answer (bounded, so a lost callback fails).
result<client_response> call(outbound_client& c, outbound_request r) {
  std::promise<result<client_response>> p;
  auto f = p.get_future();
  c.send(std::move(r), [&p](result<client_response> res) { p.set_value(std::move(res)); });
  if (f.wait_for(30s) != std::future_status::ready)
    return make_error("test_lost", "the callback was never called");
  return f.get();
}

outbound_request get(const std::string& url, std::chrono::milliseconds timeout = 5000ms) {
  outbound_request r;
  r.url = url;
  r.timeout = timeout;
  return r;
}

reply ok_reply(const bhttp::request<bhttp::string_body>& req) {
  reply r;
  r.body = std::string(req.method_string()) + " " + std::string(req.target()) + " " + req.body();
  return r;
}

TEST(outbound, keep_alive_reuses_one_connection) {
  test_server srv(ok_reply);
  prometheus::Registry reg;
  auto c = make_client(loopback_allowed(), &reg);
  for (int i = 0; i < 5; ++i) {
    auto r = call(*c, get(srv.url("/n/" + std::to_string(i))));
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "GET /n/" + std::to_string(i) + " ");
  }
  outbound_request post;
  post.method = "POST";
  post.url = srv.url("/post");
  post.body = R"({"a":1})";
  post.headers = {{"Content-Type", "application/json"}};
  auto r = call(*c, post);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->body, R"(POST /post {"a":1})");
  EXPECT_EQ(srv.connections(), 1) << "six sequential requests, one connection";
  EXPECT_EQ(c->connections_opened(), 1u);
  EXPECT_EQ(c->open_connections(), 1u) << "kept idle in the pool";
}

TEST(outbound, idle_connections_close) {
  test_server srv(ok_reply);
  auto o = loopback_allowed();
  o.idle_timeout = 50ms;
  auto c = make_client(std::move(o));
  ASSERT_TRUE(call(*c, get(srv.url())));
  // The idle timer is the event; poll the gauge it changes, bounded.
  auto until = std::chrono::steady_clock::now() + 5s;
  while (c->open_connections() != 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::yield();
  EXPECT_EQ(c->open_connections(), 0u);
  ASSERT_TRUE(call(*c, get(srv.url())));
  EXPECT_EQ(srv.connections(), 2);
}

TEST(outbound, pool_cap_queues_requests_beyond_it) {
  test_server srv([](const auto& req) {
    reply r = ok_reply(req);
    r.hold = true;
    return r;
  });
  auto o = loopback_allowed();
  o.max_connections_per_host = 2;
  auto c = make_client(std::move(o));
  constexpr int n = 6;
  std::vector<std::promise<result<client_response>>> ps(n);
  std::vector<std::future<result<client_response>>> fs;
  for (int i = 0; i < n; ++i) {
    fs.push_back(ps[i].get_future());
    c->send(get(srv.url("/" + std::to_string(i)), 20s),
            [&ps, i](result<client_response> r) { ps[i].set_value(std::move(r)); });
  }
  ASSERT_TRUE(srv.wait_waiting(2));
  EXPECT_EQ(srv.connections(), 2);
  EXPECT_EQ(c->open_connections(), 2u);
  srv.release();
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(fs[i].wait_for(20s), std::future_status::ready) << i;
    auto r = fs[i].get();
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(r->body, "GET /" + std::to_string(i) + " ") << "answers are not crossed";
  }
  EXPECT_EQ(srv.connections(), 2) << "six requests over at most two connections";
  EXPECT_EQ(srv.requests(), n);
}

TEST(outbound, deadline_on_a_server_that_never_answers) {
  test_server srv([](const auto&) {
    reply r;
    r.never = true;
    return r;
  });
  auto c = make_client(loopback_allowed());
  auto start = std::chrono::steady_clock::now();
  auto r = call(*c, get(srv.url(), 300ms));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "http_timeout");
  EXPECT_NE(r.err().message.find("within 300 ms (waiting for the response)"), std::string::npos)
      << r.err().message;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(c->open_connections(), 0u) << "the timed-out connection is closed, not pooled";
}

TEST(outbound, a_name_that_does_not_resolve_fails_within_the_deadline) {
  auto c = make_client(loopback_allowed());
  auto start = std::chrono::steady_clock::now();
  auto r = call(*c, get("http://no-such-host.invalid/x", 2000ms));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.err().code == "http_connect" || r.err().code == "http_timeout") << r.err().code;
  EXPECT_NE(r.err().message.find("no-such-host.invalid"), std::string::npos) << r.err().message;
  EXPECT_LT(took, 3s);
}

TEST(outbound, oversized_body_and_head_are_refused) {
  test_server srv([](const auto& req) {
    reply r;
    if (req.target() == "/big-body") r.body = std::string(2 << 20, 'x');
    if (req.target() == "/big-head")  // 72 KiB of head (Beast caps one value below 64 KiB)
      for (int i = 0; i < 9; ++i)
        r.headers.emplace_back("X-Big-" + std::to_string(i), std::string(8192, 'h'));
    if (req.target() == "/fits") r.body = std::string(1 << 20, 'y');
    return r;
  });
  auto c = make_client(loopback_allowed());
  auto r = call(*c, get(srv.url("/big-body")));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "http_too_large");
  EXPECT_NE(r.err().message.find("body"), std::string::npos) << r.err().message;
  r = call(*c, get(srv.url("/big-head")));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "http_too_large");
  EXPECT_NE(r.err().message.find("head"), std::string::npos) << r.err().message;
  r = call(*c, get(srv.url("/fits")));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->body.size(), std::size_t{1} << 20) << "exactly max_response_bytes fits";
}

TEST(outbound, bad_headers_are_refused_without_a_crash) {
  test_server srv(ok_reply);
  auto c = make_client(loopback_allowed());
  struct bad {
    std::string name, value, says;
  };
  for (const auto& b : std::vector<bad>{
           {"X-Inject", "a\r\nX-Evil: 1", "CR, LF or NUL"},
           {"X-Lf", "a\nb", "CR, LF or NUL"},
           {"X-Nul", std::string("a\0b", 3), "CR, LF or NUL"},
           {"X-Huge", std::string(9000, 'v'), "over the 8192 allowed"},
           {"Bad Name", "v", "not a valid HTTP token"},
           {"", "v", "not a valid HTTP token"},
           {"Content-Length", "5", "set by the HTTP client"},
           {"Host", "elsewhere", "set by the HTTP client"},
       }) {
    auto r = get(srv.url());
    r.headers = {{"Accept", "application/json"}, {b.name, b.value}};
    auto res = call(*c, r);
    ASSERT_FALSE(res) << b.name;
    EXPECT_EQ(res.err().code, "bad_header") << b.name;
    EXPECT_NE(res.err().message.find(b.says), std::string::npos) << res.err().message;
  }
  EXPECT_EQ(srv.requests(), 0) << "nothing was sent";
  auto r = get(srv.url("/fine"));
  r.headers = {{"X-Long-But-Fine", std::string(8192, 'v')}};
  auto res = call(*c, r);
  ASSERT_TRUE(res) << res.err().message;
  EXPECT_EQ(res->status, 200);
}

TEST(outbound, bad_urls_fail_cleanly) {
  auto c = make_client(loopback_allowed());
  for (const char* u : {"ftp://x/", "http://", "http://a b/", "http://127.0.0.1:1/a b",
                        "http://127.0.0.1:1/a\r\nX: y"}) {
    auto r = call(*c, get(u));
    ASSERT_FALSE(r) << u;
    EXPECT_EQ(r.err().code, "bad_url") << u << ": " << r.err().message;
  }
}

TEST(outbound, tls_needs_a_trusted_certificate_for_the_host) {
  certificate cert("DNS:localhost,IP:127.0.0.1");
  auto server_ctx = cert.server_context();
  test_server srv(ok_reply, &server_ctx);
  {
    auto c = make_client(loopback_allowed());  // the system store: it does not know ours
    auto r = call(*c, get(srv.url("/secure")));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, "http_tls");
    EXPECT_NE(r.err().message.find("certificate"), std::string::npos) << r.err().message;
  }
  {
    auto o = loopback_allowed();
    o.ca_file = cert.cert;
    auto c = make_client(std::move(o));
    for (int i = 0; i < 3; ++i) {
      auto r = call(*c, get(srv.url("/secure")));
      ASSERT_TRUE(r) << r.err().message;
      EXPECT_EQ(r->body, "GET /secure ");
    }
    auto r = call(*c, get("https://localhost:" + std::to_string(srv.port()) + "/by-name"));
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(c->connections_opened(), 2u) << "one TLS connection per destination, reused";
  }
  {
    // A certificate the client trusts, but for another name.
    certificate other("DNS:other.example");
    auto o = loopback_allowed();
    o.ca_file = other.cert;
    auto ctx = other.server_context();
    test_server srv2(ok_reply, &ctx);
    auto c = make_client(std::move(o));
    auto r = call(*c, get(srv2.url()));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, "http_tls");
    EXPECT_NE(r.err().message.find("mismatch"), std::string::npos) << r.err().message;
  }
}

TEST(outbound, a_missing_ca_file_is_a_config_error) {
  outbound_options o;
  o.ca_file = "/nonexistent/ca.pem";
  auto c = outbound_client::make(std::move(o), nullptr);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.err().code, "bad_config");
  EXPECT_NE(c.err().message.find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(outbound, egress_policy_refuses_before_connecting) {
  test_server srv(ok_reply);
  auto c = make_client(outbound_options{});  // the default policy
  auto r = call(*c, get(srv.url()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "egress_refused");
  EXPECT_EQ(r.err().message, "127.0.0.1:" + std::to_string(srv.port()) +
                                 " is a loopback address; allow it in actions.egress_allow");
  r = call(*c, get("http://localhost:" + std::to_string(srv.port()) + "/"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "egress_refused");
  EXPECT_NE(r.err().message.find("localhost resolves to"), std::string::npos) << r.err().message;
  r = call(*c, get("http://169.254.169.254/latest/meta-data/", 5000ms));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "egress_refused");
  EXPECT_NE(r.err().message.find("link-local"), std::string::npos) << r.err().message;
  r = call(*c, get("http://[::ffff:127.0.0.1]:" + std::to_string(srv.port()) + "/"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "egress_refused");
  EXPECT_EQ(srv.connections(), 0) << "nothing connected";
  EXPECT_EQ(c->connections_opened(), 0u);
  EXPECT_EQ(c->open_connections(), 0u);
}

TEST(outbound, own_ports_are_refused_even_on_an_allowed_network) {
  test_server srv(ok_reply);
  auto c = make_client(loopback_allowed());
  c->egress().add_own_port(srv.port());
  auto r = call(*c, get(srv.url()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "egress_refused");
  EXPECT_NE(r.err().message.find("this node's own port"), std::string::npos) << r.err().message;
  EXPECT_EQ(srv.connections(), 0);
}

TEST(outbound, a_stale_pooled_connection_is_retried_once_for_idempotent_methods) {
  // The server answers and closes without saying so: the pooled connection is dead.
  test_server srv([](const auto& req) {
    reply r = ok_reply(req);
    r.close_after = true;
    return r;
  });
  auto c = make_client(loopback_allowed());
  ASSERT_TRUE(call(*c, get(srv.url("/1"))));
  auto r = call(*c, get(srv.url("/2")));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->body, "GET /2 ");
  EXPECT_EQ(srv.requests(), 2);
  EXPECT_EQ(srv.connections(), 2);
  // A POST written to a dead pooled connection may have been processed: not retried.
  outbound_request post;
  post.method = "POST";
  post.url = srv.url("/3");
  post.body = "once";
  r = call(*c, post);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "http_io") << r.err().message;
  EXPECT_EQ(srv.requests(), 2);
}

TEST(outbound, done_runs_on_a_client_thread_and_may_throw) {
  test_server srv(ok_reply);
  auto c = make_client(loopback_allowed());
  std::promise<std::thread::id> where;
  auto f = where.get_future();
  c->send(get(srv.url()), [&](result<client_response>) {
    where.set_value(std::this_thread::get_id());
    throw std::runtime_error("a careless callback");
  });
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_NE(f.get(), std::this_thread::get_id());
  auto r = call(*c, get(srv.url()));
  ASSERT_TRUE(r) << "the client survived the throwing callback: " << r.err().message;
}

TEST(outbound, shutdown_answers_requests_in_flight) {
  test_server srv([](const auto&) {
    reply r;
    r.never = true;
    return r;
  });
  auto c = make_client(loopback_allowed());
  std::promise<result<client_response>> p;
  auto f = p.get_future();
  c->send(get(srv.url(), 20s), [&](result<client_response> r) { p.set_value(std::move(r)); });
  ASSERT_TRUE(srv.wait_waiting(1));
  c.reset();
  ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
  auto r = f.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, "http_shutdown");
}

TEST(outbound, metrics_count_open_connections) {
  test_server srv(ok_reply);
  prometheus::Registry reg;
  auto c = make_client(loopback_allowed(), &reg);
  ASSERT_TRUE(call(*c, get(srv.url())));
  double open = -1;
  for (const auto& fam : reg.Collect())
    if (fam.name == "parley_outbound_open_connections") open = fam.metric.at(0).gauge.value;
  EXPECT_EQ(open, 1);
}

}  // namespace
}  // namespace parley::http
