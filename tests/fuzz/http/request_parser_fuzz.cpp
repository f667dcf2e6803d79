// libFuzzer entry for the HTTP request parser (src/http/request_parser.hpp). The
// input's first byte picks where the rest is split; the rest is a byte stream from a
// client, parsed as pipelined requests. Any crash or sanitizer report is a bug, and so
// is a result that depends on the split: the stream parsed whole, in two pieces and
// byte by byte must give the same requests and the same failure.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "src/http/request_parser.hpp"

namespace {

using parley::http::request;
using parley::http::request_parser;

/// Every request, and the failure if any, flattened into one string to compare.
std::string parse_stream(std::string_view input, std::size_t piece) {
  // Small limits so the fuzzer reaches 413 and 431 with short inputs.
  request_parser p(request_parser::limits{512, 256});
  request req;
  std::string pending;
  std::string log;
  auto record = [&] {
    if (p.failed()) {
      if (p.error_status() < 400 || p.error_message().empty()) std::abort();
      log += "F" + std::to_string(p.error_status()) + p.error_message();
      return;
    }
    log += "R" + req.method + ' ' + req.target + ' ' + req.path + '?' + req.query +
           (p.keep_alive() ? "K" : "C");
    for (const auto& [k, v] : req.headers) log += '|' + k + ':' + v;
    log += "#" + std::to_string(req.body.size()) + req.body;
    if (req.body.size() > 256) std::abort();
  };
  for (std::size_t at = 0; at < input.size(); at += piece) {
    pending.append(input.substr(at, piece));
    while (!pending.empty()) {
      auto n = p.parse(pending, req);
      if (n > pending.size()) std::abort();
      pending.erase(0, n);
      if (p.failed()) {
        record();
        return log;
      }
      if (!p.done()) break;
      record();
      p.reset();
      req = request{};
    }
    // A partial line never grows past the limits (the server's buffer is bounded).
    if (pending.size() > 4096 + 2) std::abort();
  }
  log += p.started() ? "S" : "-";
  return log;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  auto whole = parse_stream(input, input.size() + 1);
  std::size_t split = 1 + data[0] % (input.size() + 1);
  if (parse_stream(input, split) != whole) std::abort();
  if (parse_stream(input, 1) != whole) std::abort();
  return 0;
}
