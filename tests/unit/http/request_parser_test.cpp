/// The HTTP/1.1 request parser on its own: every case is fed whole, one byte at a
/// time, and in two pieces at every offset, and must give the same result each way
/// (a TCP read may end anywhere).

#include "src/http/request_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace parley::http {
namespace {

/// What the parser made of one request, in a form that compares as a whole.
struct outcome {
  std::string state;  // "done", "failed", "need_more"
  int status = 0;
  std::string code;
  std::string message;
  std::string method, target, path, query, body;
  header_list headers;
  bool keep_alive = false;
  bool started = false;

  bool operator==(const outcome& o) const {
    return state == o.state && status == o.status && code == o.code && message == o.message &&
           method == o.method && target == o.target && path == o.path && query == o.query &&
           body == o.body && headers == o.headers && keep_alive == o.keep_alive &&
           started == o.started;
  }
};

std::ostream& operator<<(std::ostream& os, const outcome& o) {
  os << o.state << " " << o.status << " " << o.code << " '" << o.message << "' " << o.method << " "
     << o.target << " body='" << o.body << "' keep_alive=" << o.keep_alive
     << " started=" << o.started << " headers:";
  for (const auto& [k, v] : o.headers) os << " [" << k << ": " << v << "]";
  return os;
}

request_parser::limits small_limits() { return {16 * 1024, 1000}; }

/// Feeds `pieces` the way the server does (unconsumed bytes are offered again with
/// the next read) and parses requests until the input ends or one fails.
std::vector<outcome> run(const std::vector<std::string>& pieces,
                         request_parser::limits limits = small_limits()) {
  std::vector<outcome> results;
  request_parser p(limits);
  request req;
  std::string pending;
  auto record = [&] {
    outcome o;
    o.state = p.done() ? "done" : p.failed() ? "failed" : "need_more";
    o.started = p.started();
    if (p.failed()) {
      o.status = p.error_status();
      o.code = std::string(p.error_code());
      o.message = p.error_message();
    } else {
      o.method = req.method;
      o.target = req.target;
      o.path = req.path;
      o.query = req.query;
      o.body = req.body;
      o.headers = req.headers;
      o.keep_alive = p.done() && p.keep_alive();
    }
    results.push_back(o);
  };
  for (const auto& piece : pieces) {
    pending += piece;
    while (!pending.empty()) {
      auto n = p.parse(pending, req);
      pending.erase(0, n);
      if (p.failed()) {
        record();
        return results;
      }
      if (!p.done()) break;
      record();
      p.reset();
      req = request{};
    }
  }
  if (p.started() || !pending.empty()) record();
  return results;
}

/// Parses `input` whole, byte by byte and split in two at every offset; all must agree.
std::vector<outcome> parse_every_split(const std::string& input,
                                       request_parser::limits limits = small_limits()) {
  auto whole = run({input}, limits);
  std::vector<std::string> bytes;
  for (char c : input) bytes.emplace_back(1, c);
  EXPECT_EQ(run(bytes, limits), whole) << "byte by byte";
  for (std::size_t k = 1; k < input.size(); ++k)
    EXPECT_EQ(run({input.substr(0, k), input.substr(k)}, limits), whole) << "split at " << k;
  return whole;
}

outcome parse_one(const std::string& input, request_parser::limits limits = small_limits()) {
  auto r = parse_every_split(input, limits);
  EXPECT_EQ(r.size(), 1u);
  return r.empty() ? outcome{} : r[0];
}

void expect_error(const std::string& input, int status, const std::string& code,
                  const std::string& message, request_parser::limits limits = small_limits()) {
  auto o = parse_one(input, limits);
  EXPECT_EQ(o.state, "failed") << input;
  EXPECT_EQ(o.status, status) << input;
  EXPECT_EQ(o.code, code) << input;
  EXPECT_EQ(o.message, message) << input;
}

void expect_bad(const std::string& input, const std::string& what) {
  expect_error(input, 400, "bad_request", "malformed HTTP request: " + what);
}

const std::string turn_post =
    "POST /v1/bots/demo/conversations/c-1/turns?wait=1 HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "User-Agent: loadgen/1\r\n"
    "Accept: application/json\r\n"
    "Content-Type: application/json\r\n"
    "Authorization: Bearer abc\r\n"
    "X-Request-Id: r-42\r\n"
    "Accept-Encoding: identity\r\n"
    "Content-Length: 27\r\n"
    "\r\n"
    "{\"text\":\"hello\",\"seq\":1234}";

TEST(http_request_parser, PostWithBodyAndEightFields) {
  auto o = parse_one(turn_post);
  EXPECT_EQ(o.state, "done");
  EXPECT_EQ(o.method, "POST");
  EXPECT_EQ(o.target, "/v1/bots/demo/conversations/c-1/turns?wait=1");
  EXPECT_EQ(o.path, "/v1/bots/demo/conversations/c-1/turns");
  EXPECT_EQ(o.query, "wait=1");
  EXPECT_EQ(o.body, "{\"text\":\"hello\",\"seq\":1234}");
  ASSERT_EQ(o.headers.size(), 8u);
  EXPECT_EQ(o.headers[0], (std::pair<std::string, std::string>{"Host", "127.0.0.1:8080"}));
  EXPECT_TRUE(o.keep_alive);
  auto h = find_header(o.headers, "content-type");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(*h, "application/json");
  ASSERT_NE(find_header(o.headers, "X-REQUEST-ID"), nullptr);
}

TEST(http_request_parser, GetWithoutBody) {
  auto o = parse_one("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(o.state, "done");
  EXPECT_EQ(o.path, "/healthz");
  EXPECT_EQ(o.query, "");
  EXPECT_EQ(o.body, "");
  EXPECT_TRUE(o.keep_alive);
}

TEST(http_request_parser, KeepAliveFollowsVersionAndConnection) {
  EXPECT_FALSE(parse_one("GET / HTTP/1.0\r\n\r\n").keep_alive);
  EXPECT_TRUE(parse_one("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
  EXPECT_FALSE(parse_one("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
  EXPECT_FALSE(parse_one("GET / HTTP/1.1\r\nconnection: TE, Close\r\n\r\n").keep_alive);
  EXPECT_TRUE(parse_one("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n").keep_alive);
  EXPECT_FALSE(parse_one("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
}

TEST(http_request_parser, FieldValuesAreTrimmedAndNamesKeptAsSent) {
  auto o = parse_one("GET / HTTP/1.1\r\nX-A:   spaced \t \r\nx-empty:\r\nX-B:\tin  side\r\n\r\n");
  EXPECT_EQ(o.state, "done");
  ASSERT_EQ(o.headers.size(), 3u);
  EXPECT_EQ(o.headers[0].first, "X-A");
  EXPECT_EQ(o.headers[0].second, "spaced");
  EXPECT_EQ(o.headers[1].first, "x-empty");
  EXPECT_EQ(o.headers[1].second, "");
  EXPECT_EQ(o.headers[2].second, "in  side");
}

TEST(http_request_parser, ObsFoldIsRejected) {
  expect_bad("GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n", "bad obs-fold");
  expect_bad("GET / HTTP/1.1\r\nX-A: one\r\n\ttwo\r\n\r\n", "bad obs-fold");
}

TEST(http_request_parser, MalformedRequestLinesAndFields) {
  expect_bad("GET /\r\n\r\n", "bad target");
  expect_bad("GET / HTTP/2.0\r\n\r\n", "bad version");
  expect_bad("GET / HTTP/1.1 \r\n\r\n", "bad version");
  expect_bad("G@T / HTTP/1.1\r\n\r\n", "bad method");
  expect_bad(" GET / HTTP/1.1\r\n\r\n", "bad method");
  expect_bad("GET  / HTTP/1.1\r\n\r\n", "bad target");
  expect_bad("GET / HTTP/1.1\nHost: x\n\n", "bad line ending");
  expect_bad("GET / HTTP/1.1\r\nHost : x\r\n\r\n", "bad field");
  expect_bad("GET / HTTP/1.1\r\n: x\r\n\r\n", "bad field");
  expect_bad("GET / HTTP/1.1\r\nNoColon\r\n\r\n", "bad field");
  expect_bad(std::string("GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 28), "bad value");
  expect_bad("GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", "bad value");
}

TEST(http_request_parser, ContentLengthRules) {
  auto same = parse_one("POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc");
  EXPECT_EQ(same.state, "done");
  EXPECT_EQ(same.body, "abc");
  EXPECT_EQ(parse_one("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc").body, "abc");
  EXPECT_EQ(parse_one("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").state, "done");
  expect_bad("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
             "bad Content-Length");
  expect_bad("POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\nabcd", "bad Content-Length");
  expect_bad("POST / HTTP/1.1\r\nContent-Length: 3,\r\n\r\nabc", "bad Content-Length");
  expect_bad("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "bad Content-Length");
  expect_bad("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "bad Content-Length");
  expect_bad("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", "bad Content-Length");
  expect_bad("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", "bad Content-Length");
  expect_bad("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
             "bad Content-Length");
}

TEST(http_request_parser, BodyOverTheLimitIs413) {
  EXPECT_EQ(
      parse_one("POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'x')).state,
      "done");
  expect_error("POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413, "body_too_large",
               "request body exceeds 1000 bytes");
  expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" +
                   std::string(1000, 'x') + "\r\n1\r\n",
               413, "body_too_large", "request body exceeds 1000 bytes");
}

TEST(http_request_parser, ChunkedWithExtensionsAndTrailers) {
  auto o = parse_one(
      "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n"
      "1 ; a ; b=\"q \\\" ;x\"\r\n,\r\n"
      "A\r\n world 123\r\n"
      "0;last\r\nX-Checksum: abc \r\nX-Other: 1\r\n\r\n");
  EXPECT_EQ(o.state, "done");
  EXPECT_EQ(o.body, "hello, world 123");
  EXPECT_TRUE(o.keep_alive);
  ASSERT_EQ(o.headers.size(), 4u);  // trailers join the fields, as with Beast
  EXPECT_EQ(o.headers[2], (std::pair<std::string, std::string>{"X-Checksum", "abc"}));
  EXPECT_EQ(parse_one("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n").body, "");
}

TEST(http_request_parser, MalformedChunks) {
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  expect_bad(head + "zz\r\n", "bad chunk");
  expect_bad(head + "3\r\nabcX\r\n", "bad chunk");
  expect_bad(head + "3;\r\nabc\r\n", "bad chunk extension");
  expect_bad(head + "3;a=\"open\r\nabc\r\n", "bad chunk extension");
  expect_bad(head + "3 x\r\nabc\r\n", "bad chunk extension");
  expect_bad(head + "fffffffffffffffff\r\n", "bad chunk");
  expect_bad(head + "3\nabc\r\n", "bad line ending");
  expect_bad(head + "0\r\nContent-Length: 5\r\n\r\n", "bad Content-Length");
  expect_bad(head + "0\r\n folded\r\n\r\n", "bad obs-fold");
  expect_bad(head + std::string(5000, '1'), "bad chunk");
}

TEST(http_request_parser, OtherTransferEncodings) {
  expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "not_implemented",
               "Transfer-Encoding 'gzip' is not supported (only chunked)");
  expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
               "not_implemented",
               "Transfer-Encoding 'gzip, chunked' is not supported (only chunked)");
  expect_bad("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
             "bad Transfer-Encoding");
  expect_bad("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
             "bad Transfer-Encoding");
  expect_bad("POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", "bad Transfer-Encoding");
  expect_bad("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
             "bad Transfer-Encoding");
  expect_bad("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
             "bad Content-Length");
}

TEST(http_request_parser, HeaderSectionOver16KiBIs431) {
  const std::string line = "GET / HTTP/1.1\r\n";
  auto with_field = [&](std::size_t total) {
    // "X: " + value + CRLF, then the final CRLF: exactly `total` bytes of head.
    std::size_t value = total - line.size() - 3 - 2 - 2;
    return line + "X: " + std::string(value, 'v') + "\r\n\r\n";
  };
  request_parser::limits limits{1024, 1000};  // every split of 16 KiB is slow under ASan
  EXPECT_EQ(parse_one(with_field(1024), limits).state, "done");
  expect_error(with_field(1025), 431, "headers_too_large", "request headers exceed 1 KiB", limits);
  expect_error(line + std::string(2000, 'a'), 431, "headers_too_large",
               "request headers exceed 1 KiB", limits);

  // The default 16 KiB, whole only.
  request_parser::limits def{};
  EXPECT_EQ(run({with_field(16 * 1024)}, def)[0].state, "done");
  auto over = run({with_field(16 * 1024 + 1)}, def);
  EXPECT_EQ(over[0].status, 431);
  EXPECT_EQ(over[0].message, "request headers exceed 16 KiB");
}

TEST(http_request_parser, PipelinedRequestsAreSeparate) {
  auto r = parse_every_split(
      turn_post + "GET /healthz HTTP/1.1\r\n\r\n" +
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" +
      "GET /last HTTP/1.1\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].body, "{\"text\":\"hello\",\"seq\":1234}");
  EXPECT_EQ(r[1].path, "/healthz");
  EXPECT_TRUE(r[1].headers.empty());
  EXPECT_EQ(r[2].body, "ok");
  EXPECT_EQ(r[3].path, "/last");
  EXPECT_FALSE(r[3].keep_alive);
}

TEST(http_request_parser, EmptyLinesBeforeARequestAreSkipped) {
  auto r = parse_every_split("\r\n\r\nGET /a HTTP/1.1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].path, "/b");
  // Only empty lines: nothing started, so end of input is a clean close.
  EXPECT_TRUE(run({"\r\n\r\n"}).empty());
}

TEST(http_request_parser, TruncatedRequestHasStarted) {
  auto o = parse_one("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_EQ(o.state, "need_more");
  EXPECT_TRUE(o.started);
  EXPECT_EQ(parse_one("G").state, "need_more");
}

TEST(http_request_parser, ExpectContinueIsAnOrdinaryField) {
  // The server sends no 100 Continue (Beast's async_read did not either): a client
  // waits its timeout (curl: 1 s) and then sends the body.
  auto o = parse_one("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_EQ(o.state, "done");
  EXPECT_EQ(o.body, "hi");
  EXPECT_NE(find_header(o.headers, "expect"), nullptr);
}

TEST(http_request_parser, ResetClearsAFailure) {
  request_parser p(small_limits());
  request req;
  p.parse("BAD\r\n", req);
  EXPECT_TRUE(p.failed());
  p.reset();
  request next;
  std::string ok = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_EQ(p.parse(ok, next), ok.size());
  EXPECT_TRUE(p.done());
}

}  // namespace
}  // namespace parley::http
