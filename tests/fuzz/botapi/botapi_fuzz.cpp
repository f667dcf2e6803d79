// libFuzzer entry for the Bot API codec: the input's first byte picks the
// endpoint and a few header variants, the rest is the body. Any crash, sanitizer
// report or escaping exception is a bug; every failure must name a field. The
// codec's own JSON parser and writer must also agree with the nlohmann-based
// code they replaced (tests/unit/botapi/botapi_reference*.hpp): the same parsed
// request or the same failure, the same rendered error.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "src/channels/botapi/botapi.hpp"
#include "tests/unit/botapi/botapi_parse_compare.hpp"
#include "tests/unit/botapi/botapi_reference.hpp"
#include "tests/unit/botapi/botapi_reference_parse.hpp"

namespace botapi = parley::channels::botapi;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  parley::http::request req;
  req.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  req.headers = {
      {"Authorization", (selector & 0x10) ? "Bearer k" : "bearer"},
      {"X-Org-Id", (selector & 0x20) ? "demo" : ""},
      {"X-Session-End-Reason", (selector & 0x40) ? "UserRequest" : req.body.substr(0, 12)}};
  auto check = [&](const botapi::failure& f) {
    if (f.message.find(": ") == std::string::npos || f.status < 400) std::abort();
    if (botapi::render_failure(f, req, 0).body != botapi::reference::render_failure(f, req, 0).body)
      std::abort();
  };
  auto same = [](const auto& got, const auto& want) {
    if (botapi::compare::describe(got) != botapi::compare::describe(want)) std::abort();
  };
  // The writer escapes any bytes the way nlohmann's dump() did.
  if (botapi::render_error(400, req.body, req.body, "r", 0).body !=
      botapi::reference::render_error(400, req.body, req.body, "r", 0, std::nullopt).body)
    std::abort();
  switch (selector % 4) {
    case 0: {
      req.method = "POST";
      req.path = "/v5.3.0/bots/b/sessions";
      auto r = botapi::parse_start(req);
      same(r, botapi::reference_parse::parse_start(req));
      if (!r)
        check(r.err());
      else
        (void)r->bot_variables();
      break;
    }
    case 1: {
      req.method = "POST";
      req.path = "/v5.3.0/sessions/s/messages";
      auto r = botapi::parse_continue(req);
      same(r, botapi::reference_parse::parse_continue(req));
      if (!r) {
        check(r.err());
      } else {
        parley::bot::v1::TurnResult last;
        (void)botapi::to_input(*r, &last, 0);
      }
      break;
    }
    case 2: {
      req.method = "DELETE";
      req.path = "/v5.3.0/sessions/s";
      auto r = botapi::parse_end(req);
      same(r, botapi::reference_parse::parse_end(req));
      if (!r) check(r.err());
      break;
    }
    default: {
      req.method = (selector & 0x80) ? "POST" : "DELETE";
      req.path = req.body;
      auto r = botapi::match_route(req.method, req.path);
      same(r, botapi::reference_parse::match_route(req.method, req.path));
      if (!r) check(r.err());
    }
  }
  return 0;
}
