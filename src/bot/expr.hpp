#pragma once
/// The bot expression language (internal to src/bot): parsing with positioned
/// errors, static type checking against declared variables, and evaluation.
///
/// Grammar (lowest precedence first):
///   expr    := or
///   or      := and ("or" and)*            -- also ||
///   and     := not ("and" not)*           -- also &&
///   not     := "not" not | cmp            -- also !
///   cmp     := add (("=="|"!="|"<"|"<="|">"|">=") add)?
///   add     := mul (("+"|"-") mul)*
///   mul     := unary (("*"|"/"|"%") unary)*
///   unary   := "-" unary | primary
///   primary := number | string | true | false | null | name("." field)*
///            | func "(" args ")" | "(" expr ")"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/proto/bot.pb.h"

namespace parley::bot::detail {

enum class vtype { any, null, boolean, number, text, list, object };
const char* vtype_name(vtype t);
vtype vtype_of(::parley::bot::v1::VarType t);

struct expr_node;
using expr_ptr = std::shared_ptr<const expr_node>;

struct expr_error {
  std::size_t offset = 0;  // byte offset into the expression text
  std::string message;
};

/// Resolves a variable name to its index and static type; index < 0 = unknown.
struct var_info {
  int index = -1;
  vtype type = vtype::any;
};
using var_resolver = std::function<var_info(std::string_view)>;

struct parsed_expr {
  expr_ptr root;
  vtype type = vtype::any;
  std::vector<expr_error> errors;  // parse and type errors; root null on parse error
};

/// How deep an expression may nest: parentheses, `not`, unary `-` and call
/// arguments inside one another, and the terms of one chain of binary
/// operators (`a + b + c` is three levels). Deeper is a parse error, so neither
/// the parser nor evaluation recurses without bound on a bot file's input.
inline constexpr int max_expr_depth = 100;

/// Parses and type-checks an expression.
parsed_expr parse_expr(std::string_view text, const var_resolver& vars);

/// Thrown by eval for a runtime error (division by zero, bad conversion,
/// value too large). Caught by the VM; never escapes src/bot.
struct eval_failure {
  std::string message;
};

/// Read access to variables during evaluation.
using var_reader = std::function<const ::parley::bot::v1::Value&(int index)>;

::parley::bot::v1::Value eval(const expr_node& e, const var_reader& vars);

/// Truthiness used by conditions: null/false/0/""/[] are false.
bool truthy(const ::parley::bot::v1::Value& v);
bool values_equal(const ::parley::bot::v1::Value& a, const ::parley::bot::v1::Value& b);

/// A template "Hello {{name}}": literal text, expressions and secrets.
/// "\{{" writes a literal "{{" and "\\{{" a backslash before a placeholder.
struct template_part {
  std::string literal;     // for a secret: its placeholder "{{secret.NAME}}"
  expr_ptr expr;           // null for literal and secret parts
  std::string secret;      // {{secret.NAME}}: NAME; empty for other parts
  std::size_t offset = 0;  // expression and secret parts: byte offset of their "{{"
};
struct parsed_template {
  std::vector<template_part> parts;
  std::vector<expr_error> errors;
};
parsed_template parse_template(std::string_view text, const var_resolver& vars);

/// Where render wrote a secret's placeholder: byte offset into its output.
struct secret_mark {
  std::size_t offset = 0;
  std::string name;
};
/// Renders a template. A secret part is written as its placeholder
/// "{{secret.NAME}}", never resolved here; when `secrets` is given, each one
/// the template wrote is appended to it with its offset in the output. Text
/// that an expression rendered is never marked, whatever it contains.
std::string render(const parsed_template& t, const var_reader& vars,
                   std::vector<secret_mark>* secrets = nullptr);

}  // namespace parley::bot::detail
