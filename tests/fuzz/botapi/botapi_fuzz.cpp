// libFuzzer entry for the Bot API codec: the input's first byte picks the
// endpoint and a few header variants, the rest is the body. Any crash, sanitizer
// report or escaping exception is a bug; every failure must name a field.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "src/channels/botapi/botapi.hpp"

namespace botapi = parley::channels::botapi;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  parley::http::request req;
  req.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  req.headers = {{"Authorization", (selector & 0x10) ? "Bearer k" : "bearer"},
                 {"X-Org-Id", (selector & 0x20) ? "demo" : ""},
                 {"X-Session-End-Reason", (selector & 0x40) ? "UserRequest" : req.body.substr(0, 12)}};
  auto check = [&](const botapi::failure& f) {
    if (f.message.find(": ") == std::string::npos || f.status < 400) std::abort();
    (void)botapi::render_failure(f, req, 0);
  };
  switch (selector % 4) {
    case 0: {
      req.method = "POST";
      req.path = "/v5.3.0/bots/b/sessions";
      auto r = botapi::parse_start(req);
      if (!r) check(r.err());
      else (void)r->bot_variables();
      break;
    }
    case 1: {
      req.method = "POST";
      req.path = "/v5.3.0/sessions/s/messages";
      auto r = botapi::parse_continue(req);
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
      if (!r) check(r.err());
      break;
    }
    default: {
      req.method = (selector & 0x80) ? "POST" : "DELETE";
      req.path = req.body;
      auto r = botapi::match_route(req.method, req.path);
      if (!r) check(r.err());
    }
  }
  return 0;
}
