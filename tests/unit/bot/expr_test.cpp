#include <gtest/gtest.h>

#include "src/bot/bot.hpp"
#include "src/bot/expr.hpp"

namespace bot = parley::bot;
namespace d = parley::bot::detail;

namespace {

struct env {
  std::vector<bot::v1::Value> vals;
  env() {
    vals.resize(3);
    vals[0].set_number(41);
    vals[1].set_text("Ada Lovelace");
    auto* o = vals[2].mutable_object();
    auto* f = o->add_fields();
    f->set_key("status");
    f->mutable_value()->set_text("shipped");
  }
  d::var_info resolve(std::string_view n) const {
    if (n == "count") return {0, d::vtype::number};
    if (n == "name") return {1, d::vtype::text};
    if (n == "order") return {2, d::vtype::object};
    return {};
  }
  std::string eval(const std::string& text) const {
    auto p = d::parse_expr(text, [this](std::string_view n) { return resolve(n); });
    if (!p.errors.empty()) return "error: " + p.errors[0].message;
    try {
      return bot::to_text(
          d::eval(*p.root, [this](int i) -> const bot::v1::Value& { return vals[i]; }));
    } catch (const d::eval_failure& f) {
      return "runtime: " + f.message;
    }
  }
  std::vector<d::expr_error> errors(const std::string& text) const {
    return d::parse_expr(text, [this](std::string_view n) { return resolve(n); }).errors;
  }
};

}  // namespace

TEST(expr, arithmetic_and_precedence) {
  env e;
  EXPECT_EQ(e.eval("count + 1"), "42");
  EXPECT_EQ(e.eval("1 + 2 * 3"), "7");
  EXPECT_EQ(e.eval("(1 + 2) * 3"), "9");
  EXPECT_EQ(e.eval("-count % 5"), "-1");
  EXPECT_EQ(e.eval("7 / 2"), "3.5");
  EXPECT_EQ(e.eval("round(2 / 3, 2)"), "0.67");
}

TEST(expr, logic_and_comparison) {
  env e;
  EXPECT_EQ(e.eval("count > 40 and not (count == 42)"), "true");
  EXPECT_EQ(e.eval("count < 10 or name == 'Ada Lovelace'"), "true");
  EXPECT_EQ(e.eval("order.status == \"shipped\""), "true");
  EXPECT_EQ(e.eval("order.missing == null"), "true");
  EXPECT_EQ(e.eval("'abc' < 'abd'"), "true");
}

TEST(expr, string_functions) {
  env e;
  EXPECT_EQ(e.eval("upper(name)"), "ADA LOVELACE");
  EXPECT_EQ(e.eval("len(name)"), "12");
  EXPECT_EQ(e.eval("contains(lower(name), 'love')"), "true");
  EXPECT_EQ(e.eval("substr(name, 4, 4)"), "Love");
  EXPECT_EQ(e.eval("replace('ab-12', '-', '')"), "ab12");
  EXPECT_EQ(e.eval("'n=' + count"), "n=41");
  EXPECT_EQ(e.eval("number('12.5') * 2"), "25");
  EXPECT_EQ(e.eval("join(append(append(null, 'a'), 'b'), '+')"), "a+b");
}

TEST(expr, static_errors_are_positioned) {
  env e;
  auto errs = e.errors("count + nobody");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].offset, 8u);
  EXPECT_EQ(errs[0].message, "undefined variable 'nobody'");
  errs = e.errors("count == 'x'");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].message, "type mismatch: cannot compare number with text");
  errs = e.errors("name * 2");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].message.find("'*' needs numbers, got text"), std::string::npos);
  EXPECT_EQ(e.errors("count = 1")[0].message, "'=' is not an operator here; use '==' to compare");
  EXPECT_EQ(e.errors("frobnicate(1)")[0].message.rfind("unknown function 'frobnicate'", 0), 0u);
  EXPECT_EQ(e.errors("len(1, 2)")[0].message, "function 'len' takes 1 argument(s), got 2");
  EXPECT_EQ(e.errors("(1 + 2")[0].message, "expected ')'");
  EXPECT_EQ(e.errors("'open")[0].message, "unterminated string");
}

TEST(expr, runtime_errors_do_not_crash) {
  env e;
  EXPECT_EQ(e.eval("count / 0"), "runtime: division by zero");
  EXPECT_EQ(e.eval("number('abc')"), "runtime: number(): 'abc' is not a number");
}

TEST(expr, templates) {
  env e;
  auto t = d::parse_template("Hi {{ upper(name) }}, {{count + 1}} items. {{secret.TOKEN}}",
                             [&](std::string_view n) { return e.resolve(n); });
  ASSERT_TRUE(t.errors.empty());
  EXPECT_EQ(d::render(t, [&](int i) -> const bot::v1::Value& { return e.vals[i]; }),
            "Hi ADA LOVELACE, 42 items. {{secret.TOKEN}}");
  auto bad = d::parse_template("Hi {{name", [&](std::string_view n) { return e.resolve(n); });
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_EQ(bad.errors[0].offset, 3u);
}
