#pragma once
/// The node's one outbound HTTP/1.1 client, for bot actions and channel deliveries
/// (provider REST calls): asynchronous, http and https, a keep-alive pool per
/// destination, an egress policy (egress.hpp). Asio, Beast and OpenSSL stay in the .cpp.
///
/// Threads: the client runs its own I/O threads (`outbound_options::threads`, one
/// `io_context` each; a destination always uses the same one). `send` may be called
/// from any thread and never blocks; `done` is called exactly once, on one of the
/// client's threads, never inside `send`. It must not block: a caller that lives
/// elsewhere (an actor) posts the answer back (a CAF message). If `done` throws, the
/// exception is caught and logged: no exception leaves a client thread.
///
/// One request, in order, all within its one deadline (`outbound_request::timeout`):
///   - the URL and headers are checked: `bad_url`, or `bad_header` naming the header
///     (a name that is not a token; a value with CR, LF or NUL or over 8 KiB; a framing
///     header such as Content-Length or Host, which the client sets);
///   - a pooled idle connection to (scheme, host, port) is reused, else a new one is
///     opened, at most `max_connections_per_host` per destination; past it the request
///     waits for one (in arrival order);
///   - a new connection resolves the host (asynchronously), checks every resolved address
///     against the egress policy before connecting (`egress_refused`, with the reason),
///     connects (`http_connect`), and for https does the TLS handshake: SNI, the
///     certificate chain verified against the system store or `ca_file`, and the host
///     name (or IP address) checked against the certificate (`http_tls`);
///   - the response head may be 64 KiB at most and the body `max_response_bytes`
///     (`http_too_large`); other transport failures are `http_io`;
///   - past the deadline: `http_timeout`, wherever the request was (DNS, the queue,
///     connect, TLS, write, read).
/// A reused connection the server had closed (nothing received back) is retried once on
/// a fresh connection, when the method is idempotent or nothing was written.
/// A response of any status (4xx, 5xx included) is a success. A connection idle for
/// `idle_timeout` is closed. At destruction, requests in flight finish with
/// `http_shutdown`.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "src/common/result.hpp"
#include "src/http/client.hpp"
#include "src/http/egress.hpp"

namespace prometheus {
class Registry;
}

namespace parley::http {

struct outbound_options {
  int threads = 1;  ///< I/O threads (each with its own io_context and pools)
  std::size_t max_connections_per_host = 16;
  std::size_t max_response_bytes = 1 << 20;
  std::chrono::milliseconds idle_timeout{4000};
  /// PEM file of the certificate authorities to trust instead of the system store
  /// (tests, air-gapped installs). Empty: the system's default verify paths.
  std::string ca_file;
  egress_policy egress;
  /// Prefix of the client's metric names: `<prefix>_open_connections`.
  std::string metrics_prefix = "parley_outbound";
};

struct outbound_request {
  std::string method = "GET";
  std::string url;  ///< http://host[:port]/path?query or https://...
  header_list headers;
  std::string body;
  std::chrono::milliseconds timeout{10000};  ///< for the whole request, DNS included
};

class outbound_client {
 public:
  /// Starts the threads. Fails (`bad_config`) when `ca_file` cannot be loaded, so the
  /// node refuses to start instead of failing every https call.
  static result<std::unique_ptr<outbound_client>> make(outbound_options options,
                                                       prometheus::Registry* registry);
  ~outbound_client();
  outbound_client(const outbound_client&) = delete;
  outbound_client& operator=(const outbound_client&) = delete;

  using callback = std::function<void(result<client_response>)>;
  /// Any thread. See the file comment.
  void send(outbound_request request, callback done);

  /// Connections open now (idle and busy), over every destination; any thread.
  std::size_t open_connections() const;
  /// Connections opened since the start (for tests: reuse means this stays put).
  std::size_t connections_opened() const;

  /// The egress policy, to add the node's own ports once they are known.
  egress_policy& egress();

  struct impl;

 private:
  explicit outbound_client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Validates one request header: nullopt when fine, else a `bad_header` error naming it.
std::optional<error> check_header(const std::string& name, const std::string& value);

}  // namespace parley::http
