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

TEST(expr, a_backslash_makes_a_literal_open_brace_pair) {
  env e;
  auto render = [&](std::string_view text, std::vector<d::secret_mark>* marks = nullptr) {
    auto t = d::parse_template(text, [&](std::string_view n) { return e.resolve(n); });
    EXPECT_TRUE(t.errors.empty()) << text << ": " << t.errors[0].message;
    return d::render(
        t, [&](int i) -> const bot::v1::Value& { return e.vals[i]; }, marks);
  };
  EXPECT_EQ(render(R"(Type \{{name}} to see {{name}}.)"), "Type {{name}} to see Ada Lovelace.");
  EXPECT_EQ(render(R"(\{{{{count}})"), "{{41") << "a placeholder right after it still renders";
  EXPECT_EQ(render(R"({{count}}\{{)"), "41{{") << "no '}}' needed after a literal '{{'";
  EXPECT_EQ(render(R"(C:\\{{name}})"), R"(C:\Ada Lovelace)") << "a backslash before a value";
  EXPECT_EQ(render(R"(a \ b \} {{count}})"), R"(a \ b \} 41)") << "other backslashes stay";
  std::vector<d::secret_mark> marks;
  EXPECT_EQ(render(R"(\{{secret.TOKEN}})", &marks), "{{secret.TOKEN}}");
  EXPECT_TRUE(marks.empty()) << "an escaped placeholder is text, never a secret";
}

TEST(expr, a_literal_open_brace_pair_reaches_the_user) {
  auto r = bot::compile(R"(bot: {name: braces, welcome: w}
variables: {n: {type: number, default: 2}}
dialogs:
  w:
    - message: 'Write \{{n}} in a message to show n, like this: {{n}}'
    - message: "In double quotes: \\{{ and {{n + 1}}"
)");
  std::string diags;
  for (const auto& dg : r.diagnostics) diags += dg.to_string() + "\n";
  ASSERT_TRUE(r.ok()) << diags;
  auto p = bot::load(*r.program);
  ASSERT_TRUE(p.ok());
  auto t = bot::start(**p, {}, 0);
  ASSERT_EQ(t.messages_size(), 2);
  EXPECT_EQ(t.messages(0).text(), "Write {{n}} in a message to show n, like this: 2");
  EXPECT_EQ(t.messages(1).text(), "In double quotes: {{ and 3");
}

namespace {

std::string repeat(std::string_view s, int n) {
  std::string out;
  out.reserve(s.size() * static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// `n` nested parentheses around `count`.
std::string parens(int n) { return repeat("(", n) + "count" + repeat(")", n); }

// `n` terms joined by `op`.
std::string chain(const std::string& term, const std::string& op, int n) {
  return term + repeat(op + term, n - 1);
}

const std::string too_deep = "expression nested deeper than 100 levels";

}  // namespace

// Each of these recursed once per level in the parser or in evaluation, and
// 100,000 levels overflowed the stack. The limit is an error, not a crash.
TEST(expr, nesting_deeper_than_the_limit_is_an_error_not_a_crash) {
  env e;
  ASSERT_EQ(d::max_expr_depth, 100);
  const int deep = 100000;
  for (const std::string& text :
       {parens(deep), repeat("!", deep) + "true", repeat("not ", deep) + "true",
        repeat("- ", deep) + "1", repeat("-(", deep) + "1" + repeat(")", deep),
        repeat("abs(", deep) + "1" + repeat(")", deep), chain("1", " + ", deep),
        chain("count", "*", deep), chain("true", " and ", deep), chain("false", " || ", deep),
        "order" + repeat(".a", deep), "len(" + parens(deep) + ")"}) {
    auto errs = e.errors(text);
    ASSERT_EQ(errs.size(), 1u) << text.substr(0, 40);
    EXPECT_EQ(errs[0].message.rfind(too_deep, 0), 0u) << errs[0].message;
  }
  // The error points at the level past the limit.
  EXPECT_EQ(e.errors(parens(deep))[0].offset, 100u);
  EXPECT_EQ(e.errors(repeat("!", deep) + "true")[0].offset, 100u);
}

TEST(expr, nesting_up_to_the_limit_parses_and_evaluates) {
  env e;
  EXPECT_EQ(e.eval(parens(100)), "41");
  EXPECT_EQ(e.eval(parens(101)).rfind("error: " + too_deep, 0), 0u);
  EXPECT_EQ(e.eval(chain("1", " + ", 100)), "100") << "100 terms: 99 operators over a leaf";
  EXPECT_EQ(e.eval(chain("1", " + ", 101)).rfind("error: " + too_deep, 0), 0u);
  EXPECT_EQ(e.eval(repeat("- ", 99) + "1"), "-1");
  EXPECT_EQ(e.eval(repeat("not ", 99) + "false"), "true");
  EXPECT_EQ(e.eval(repeat("not ", 101) + "false").rfind("error: " + too_deep, 0), 0u);
}

// The compiler reports it like any other expression error: file, line, column.
TEST(expr, the_compiler_names_the_line_of_a_too_deep_expression) {
  std::string text =
      "bot: {name: deep, welcome: w}\n"
      "variables: {count: number}\n"
      "dialogs:\n"
      "  w:\n"
      "    - set: {count: '1'}\n"
      "    - if: '" +
      parens(100000) +
      "'\n"
      "      then: [{message: yes}]\n"
      "    - message: 'n is {{" +
      repeat("-", 100000) + "count}}'\n";
  auto r = bot::compile(text, "deep.yaml");
  EXPECT_FALSE(r.ok());
  int found = 0;
  for (const auto& dg : r.diagnostics) {
    EXPECT_EQ(dg.message.rfind(too_deep, 0), 0u) << dg.to_string().substr(0, 200);
    EXPECT_EQ(dg.file, "deep.yaml");
    if (dg.line == 6) {
      ++found;
      EXPECT_EQ(dg.column, 112) << "the quote is column 11, the first '(' 12";
    }
    if (dg.line == 8) ++found;
  }
  EXPECT_EQ(found, 2) << r.diagnostics.size() << " diagnostics";
}
