#pragma once
// The bot unit tests' one way to compile and load a bot file: diagnostics are shown
// on failure, and a bot that does not compile or load gives nullptr.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "src/bot/bot.hpp"

namespace parley::bot::testing {

inline std::shared_ptr<const program> build(const std::string& text,
                                            const std::string& file = "test.yaml") {
  auto r = compile(text, file);
  std::string diags;
  for (const auto& d : r.diagnostics) diags += d.to_string() + "\n";
  EXPECT_TRUE(r.ok()) << diags;
  if (!r.ok()) return nullptr;
  auto p = load(*r.program);
  EXPECT_TRUE(p.ok());
  return p.ok() ? *p : nullptr;
}

}  // namespace parley::bot::testing
