#include "src/bot/expr.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "src/bot/bot.hpp"
#include "src/bot/text.hpp"

namespace parley::bot::detail {

using v1::Value;

const char* vtype_name(vtype t) {
  switch (t) {
    case vtype::any:
      return "any";
    case vtype::null:
      return "null";
    case vtype::boolean:
      return "boolean";
    case vtype::number:
      return "number";
    case vtype::text:
      return "text";
    case vtype::list:
      return "list";
    case vtype::object:
      return "object";
  }
  return "?";
}

vtype vtype_of(v1::VarType t) {
  switch (t) {
    case v1::VAR_TEXT:
    case v1::VAR_DATE:
    case v1::VAR_DATETIME:
      return vtype::text;
    case v1::VAR_NUMBER:
    case v1::VAR_MONEY:
      return vtype::number;
    case v1::VAR_BOOLEAN:
      return vtype::boolean;
    case v1::VAR_LIST:
      return vtype::list;
    case v1::VAR_OBJECT:
      return vtype::object;
    default:
      return vtype::any;
  }
}

enum class op {
  literal,
  var,
  field,
  neg,
  not_,
  and_,
  or_,
  add,
  sub,
  mul,
  div,
  mod,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  call
};

struct expr_node {
  op kind = op::literal;
  Value literal;
  int var = -1;
  std::string name;  // field name or function name
  std::vector<expr_ptr> args;
  int depth = 1;  // levels of the tree below and including this node
};

namespace {

struct func_sig {
  const char* name;
  int min_args;
  int max_args;
  vtype result;
};

const func_sig funcs[] = {
    {"len", 1, 1, vtype::number},        {"lower", 1, 1, vtype::text},
    {"upper", 1, 1, vtype::text},        {"trim", 1, 1, vtype::text},
    {"contains", 2, 2, vtype::boolean},  {"starts_with", 2, 2, vtype::boolean},
    {"ends_with", 2, 2, vtype::boolean}, {"text", 1, 1, vtype::text},
    {"number", 1, 1, vtype::number},     {"round", 1, 2, vtype::number},
    {"floor", 1, 1, vtype::number},      {"ceil", 1, 1, vtype::number},
    {"abs", 1, 1, vtype::number},        {"min", 2, 2, vtype::number},
    {"max", 2, 2, vtype::number},        {"is_set", 1, 1, vtype::boolean},
    {"default", 2, 2, vtype::any},       {"replace", 3, 3, vtype::text},
    {"substr", 2, 3, vtype::text},       {"join", 2, 2, vtype::text},
    {"append", 2, 2, vtype::list},
};

const func_sig* find_func(std::string_view n) {
  for (const auto& f : funcs)
    if (n == f.name) return &f;
  return nullptr;
}

enum class tok { end, number, string, ident, lparen, rparen, comma, dot, op, error };

struct token {
  tok kind = tok::end;
  std::string text;
  double number = 0;
  std::size_t offset = 0;
};

class parser {
 public:
  parser(std::string_view src, const var_resolver& vars) : src_(src), vars_(vars) { next(); }

  parsed_expr run() {
    parsed_expr out;
    auto [root, type] = parse_or();
    if (!failed_ && cur_.kind != tok::end)
      fail(cur_.offset, "unexpected '" + cur_.text + "' after the end of the expression");
    out.errors = std::move(errors_);
    if (!failed_) {
      out.root = root;
      out.type = type;
    }
    return out;
  }

 private:
  using typed = std::pair<expr_ptr, vtype>;

  void fail(std::size_t off, std::string msg) {
    if (!failed_) errors_.push_back({off, std::move(msg)});
    failed_ = true;
  }
  void type_error(std::size_t off, std::string msg) { errors_.push_back({off, std::move(msg)}); }

  void next() {
    while (pos_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    cur_ = token{};
    cur_.offset = pos_;
    if (pos_ >= src_.size()) return;
    char c = src_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      std::size_t b = pos_;
      while (pos_ < src_.size() &&
             (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '.'))
        ++pos_;
      cur_.kind = tok::number;
      cur_.text = std::string(src_.substr(b, pos_ - b));
      char* endp = nullptr;
      cur_.number = std::strtod(cur_.text.c_str(), &endp);
      if (*endp != '\0') {
        cur_.kind = tok::error;
        fail(b, "malformed number '" + cur_.text + "'");
      }
      return;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t b = pos_;
      while (pos_ < src_.size() &&
             (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_'))
        ++pos_;
      cur_.kind = tok::ident;
      cur_.text = std::string(src_.substr(b, pos_ - b));
      return;
    }
    if (c == '"' || c == '\'') {
      std::size_t b = pos_++;
      std::string s;
      while (pos_ < src_.size() && src_[pos_] != c) {
        if (src_[pos_] == '\\' && pos_ + 1 < src_.size()) {
          ++pos_;
          char e = src_[pos_];
          s.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
        } else {
          s.push_back(src_[pos_]);
        }
        ++pos_;
      }
      if (pos_ >= src_.size()) {
        cur_.kind = tok::error;
        fail(b, "unterminated string");
        return;
      }
      ++pos_;
      cur_.kind = tok::string;
      cur_.text = std::move(s);
      return;
    }
    static const char* ops[] = {"==", "!=", "<=", ">=", "&&", "||", "<",
                                ">",  "+",  "-",  "*",  "/",  "%",  "!"};
    for (const char* o : ops) {
      std::string_view ov(o);
      if (src_.substr(pos_, ov.size()) == ov) {
        pos_ += ov.size();
        cur_.kind = tok::op;
        cur_.text = std::string(ov);
        return;
      }
    }
    ++pos_;
    cur_.text = std::string(1, c);
    switch (c) {
      case '(':
        cur_.kind = tok::lparen;
        return;
      case ')':
        cur_.kind = tok::rparen;
        return;
      case ',':
        cur_.kind = tok::comma;
        return;
      case '.':
        cur_.kind = tok::dot;
        return;
      case '=':
        cur_.kind = tok::error;
        fail(cur_.offset, "'=' is not an operator here; use '==' to compare");
        return;
      default:
        cur_.kind = tok::error;
        fail(cur_.offset, std::string("unexpected character '") + c + "'");
    }
  }

  bool is_op(const char* a, const char* b = nullptr) const {
    if (cur_.kind == tok::op) return cur_.text == a || (b && cur_.text == b);
    if (cur_.kind == tok::ident) return cur_.text == a || (b && cur_.text == b);
    return false;
  }

  expr_ptr make(op k, std::vector<expr_ptr> args, std::size_t off) {
    auto n = std::make_shared<expr_node>();
    n->kind = k;
    n->args = std::move(args);
    return deepen(std::move(n), off);
  }

  // Sets a new inner node's depth; a tree deeper than the limit is an error,
  // since evaluating it (and freeing it) recurses once per level.
  expr_ptr deepen(std::shared_ptr<expr_node> n, std::size_t off) {
    for (const auto& a : n->args)
      if (a) n->depth = std::max(n->depth, a->depth + 1);
    if (n->depth > max_expr_depth) too_deep(off);
    return n;
  }

  void too_deep(std::size_t off) {
    fail(off, "expression nested deeper than " + std::to_string(max_expr_depth) +
                  " levels (parentheses, 'not', '-', calls, or terms of one chain)");
  }

  // Counts the parser's own recursion: parentheses, 'not', '-' and call
  // arguments inside one another. Past the limit the parser stops descending.
  class nesting {
   public:
    nesting(parser& p, std::size_t off) : p_(p) {
      if (++p_.depth_ > max_expr_depth) p_.too_deep(off);
    }
    ~nesting() { --p_.depth_; }
    nesting(const nesting&) = delete;
    nesting& operator=(const nesting&) = delete;

   private:
    parser& p_;
  };

  void want_bool(vtype t, std::size_t off, const char* what) {
    if (t != vtype::any && t != vtype::boolean)
      type_error(off,
                 std::string("type mismatch: ") + what + " needs a boolean, got " + vtype_name(t));
  }

  typed parse_or() {
    auto l = parse_and();
    while (!failed_ && is_op("or", "||")) {
      auto off = cur_.offset;
      next();
      auto r = parse_and();
      want_bool(l.second, off, "'or'");
      want_bool(r.second, off, "'or'");
      l = {make(op::or_, {l.first, r.first}, off), vtype::boolean};
    }
    return l;
  }

  typed parse_and() {
    auto l = parse_not();
    while (!failed_ && is_op("and", "&&")) {
      auto off = cur_.offset;
      next();
      auto r = parse_not();
      want_bool(l.second, off, "'and'");
      want_bool(r.second, off, "'and'");
      l = {make(op::and_, {l.first, r.first}, off), vtype::boolean};
    }
    return l;
  }

  typed parse_not() {
    if (is_op("not", "!")) {
      auto off = cur_.offset;
      nesting level(*this, off);
      if (failed_) return {nullptr, vtype::any};
      next();
      auto e = parse_not();
      want_bool(e.second, off, "'not'");
      return {make(op::not_, {e.first}, off), vtype::boolean};
    }
    return parse_cmp();
  }

  typed parse_cmp() {
    auto l = parse_add();
    static const std::pair<const char*, op> cmps[] = {{"==", op::eq}, {"!=", op::ne},
                                                      {"<=", op::le}, {">=", op::ge},
                                                      {"<", op::lt},  {">", op::gt}};
    if (failed_ || cur_.kind != tok::op) return l;
    for (auto [s, k] : cmps) {
      if (cur_.text != s) continue;
      auto off = cur_.offset;
      next();
      auto r = parse_add();
      bool known = l.second != vtype::any && r.second != vtype::any && l.second != vtype::null &&
                   r.second != vtype::null;
      if (known && l.second != r.second)
        type_error(off, std::string("type mismatch: cannot compare ") + vtype_name(l.second) +
                            " with " + vtype_name(r.second));
      else if (known && k != op::eq && k != op::ne && l.second != vtype::number &&
               l.second != vtype::text)
        type_error(off, std::string("type mismatch: '") + s + "' needs numbers or texts, got " +
                            vtype_name(l.second));
      return {make(k, {l.first, r.first}, off), vtype::boolean};
    }
    return l;
  }

  typed parse_add() {
    auto l = parse_mul();
    while (!failed_ && cur_.kind == tok::op && (cur_.text == "+" || cur_.text == "-")) {
      bool plus = cur_.text == "+";
      auto off = cur_.offset;
      next();
      auto r = parse_mul();
      vtype t = vtype::number;
      if (plus && (l.second == vtype::text || r.second == vtype::text)) {
        t = vtype::text;  // concatenation
      } else if (plus && (l.second == vtype::any || r.second == vtype::any)) {
        t = vtype::any;
      } else {
        for (vtype s : {l.second, r.second})
          if (s != vtype::any && s != vtype::number)
            type_error(off, std::string("type mismatch: '") + (plus ? "+" : "-") +
                                "' needs numbers, got " + vtype_name(s));
      }
      l = {make(plus ? op::add : op::sub, {l.first, r.first}, off), t};
    }
    return l;
  }

  typed parse_mul() {
    auto l = parse_unary();
    while (!failed_ && cur_.kind == tok::op &&
           (cur_.text == "*" || cur_.text == "/" || cur_.text == "%")) {
      std::string o = cur_.text;
      auto off = cur_.offset;
      next();
      auto r = parse_unary();
      for (vtype s : {l.second, r.second})
        if (s != vtype::any && s != vtype::number)
          type_error(off, "type mismatch: '" + o + "' needs numbers, got " + vtype_name(s));
      l = {make(o == "*"   ? op::mul
                : o == "/" ? op::div
                           : op::mod,
                {l.first, r.first}, off),
           vtype::number};
    }
    return l;
  }

  typed parse_unary() {
    if (cur_.kind == tok::op && cur_.text == "-") {
      auto off = cur_.offset;
      nesting level(*this, off);
      if (failed_) return {nullptr, vtype::any};
      next();
      auto e = parse_unary();
      if (e.second != vtype::any && e.second != vtype::number)
        type_error(off,
                   std::string("type mismatch: '-' needs a number, got ") + vtype_name(e.second));
      return {make(op::neg, {e.first}, off), vtype::number};
    }
    return parse_primary();
  }

  typed parse_primary() {
    if (failed_) return {nullptr, vtype::any};
    auto off = cur_.offset;
    switch (cur_.kind) {
      case tok::number: {
        auto n = std::make_shared<expr_node>();
        n->literal.set_number(cur_.number);
        next();
        return {n, vtype::number};
      }
      case tok::string: {
        auto n = std::make_shared<expr_node>();
        n->literal.set_text(cur_.text);
        next();
        return {n, vtype::text};
      }
      case tok::lparen: {
        nesting level(*this, off);
        if (failed_) break;
        next();
        auto e = parse_or();
        if (!failed_ && cur_.kind != tok::rparen) fail(cur_.offset, "expected ')'");
        next();
        return e;
      }
      case tok::ident: {
        std::string name = cur_.text;
        next();
        if (name == "true" || name == "false") {
          auto n = std::make_shared<expr_node>();
          n->literal.set_boolean(name == "true");
          return {n, vtype::boolean};
        }
        if (name == "null") {
          auto n = std::make_shared<expr_node>();
          n->literal.set_null_value(true);
          return {n, vtype::null};
        }
        if (cur_.kind == tok::lparen) return parse_call(name, off);
        auto info = vars_(name);
        auto n = std::make_shared<expr_node>();
        n->kind = op::var;
        n->var = info.index;
        n->name = name;
        vtype t = info.type;
        if (info.index < 0) type_error(off, "undefined variable '" + name + "'");
        expr_ptr cur = n;
        while (!failed_ && cur_.kind == tok::dot) {
          next();
          if (cur_.kind != tok::ident) {
            fail(cur_.offset, "expected a field name after '.'");
            break;
          }
          if (t != vtype::any && t != vtype::object)
            type_error(off, "type mismatch: '" + name + "' is " + vtype_name(t) +
                                ", it has no field '" + cur_.text + "'");
          auto f = std::make_shared<expr_node>();
          f->kind = op::field;
          f->name = cur_.text;
          f->args = {cur};
          cur = deepen(std::move(f), cur_.offset);
          t = vtype::any;
          next();
        }
        return {cur, t};
      }
      case tok::end:
        fail(off, "expression ends too early");
        break;
      case tok::error:
        break;
      default:
        fail(off, "unexpected '" + cur_.text + "'");
        break;
    }
    return {nullptr, vtype::any};
  }

  typed parse_call(const std::string& name, std::size_t off) {
    nesting level(*this, off);
    if (failed_) return {nullptr, vtype::any};
    next();  // (
    std::vector<expr_ptr> args;
    std::vector<vtype> types;
    if (cur_.kind != tok::rparen) {
      while (!failed_) {
        auto a = parse_or();
        args.push_back(a.first);
        types.push_back(a.second);
        if (cur_.kind == tok::comma) {
          next();
          continue;
        }
        break;
      }
    }
    if (!failed_ && cur_.kind != tok::rparen) fail(cur_.offset, "expected ')' or ','");
    next();
    const func_sig* f = find_func(name);
    vtype result = vtype::any;
    if (!f) {
      std::string known;
      for (const auto& g : funcs) known += std::string(known.empty() ? "" : ", ") + g.name;
      type_error(off, "unknown function '" + name + "' (known: " + known + ")");
    } else {
      result = f->result;
      auto n = static_cast<int>(args.size());
      if (n < f->min_args || n > f->max_args)
        type_error(off, "function '" + name + "' takes " + std::to_string(f->min_args) +
                            (f->max_args != f->min_args ? " to " + std::to_string(f->max_args)
                                                        : std::string()) +
                            " argument(s), got " + std::to_string(n));
      if (name == "default" && !types.empty()) result = types[0];
      std::string_view nv(name);
      bool numeric = nv == "round" || nv == "floor" || nv == "ceil" || nv == "abs" || nv == "min" ||
                     nv == "max";
      bool textual = nv == "lower" || nv == "upper" || nv == "trim" || nv == "starts_with" ||
                     nv == "ends_with" || nv == "replace" || nv == "substr";
      for (std::size_t i = 0; i < types.size(); ++i) {
        vtype t = types[i];
        if (t == vtype::any) continue;
        if (numeric && t != vtype::number)
          type_error(off, "type mismatch: '" + name + "' needs numbers, got " + vtype_name(t));
        if (textual && i == 0 && t != vtype::text)
          type_error(off, "type mismatch: '" + name + "' needs a text, got " + vtype_name(t));
        if (nv == "substr" && i > 0 && t != vtype::number)
          type_error(off, "type mismatch: 'substr' positions must be numbers");
      }
    }
    auto n = std::make_shared<expr_node>();
    n->kind = op::call;
    n->name = name;
    n->args = std::move(args);
    return {deepen(std::move(n), off), result};
  }

  std::string_view src_;
  const var_resolver& vars_;
  std::size_t pos_ = 0;
  token cur_;
  int depth_ = 0;  // the parser's current recursion (nesting)
  bool failed_ = false;
  std::vector<expr_error> errors_;
};

Value num(double d) {
  Value v;
  v.set_number(d);
  return v;
}
Value txt(std::string s) {
  Value v;
  v.set_text(std::move(s));
  return v;
}
Value boolean(bool b) {
  Value v;
  v.set_boolean(b);
  return v;
}

const char* kind_name(const Value& v) {
  switch (v.kind_case()) {
    case Value::kBoolean:
      return "boolean";
    case Value::kNumber:
      return "number";
    case Value::kText:
      return "text";
    case Value::kList:
      return "list";
    case Value::kObject:
      return "object";
    default:
      return "null";
  }
}

double need_number(const Value& v, const char* what) {
  if (v.kind_case() != Value::kNumber)
    throw eval_failure{std::string(what) + " needs a number, got " + kind_name(v)};
  return v.number();
}

std::string need_text(const Value& v, const char* what) {
  if (v.kind_case() == Value::kText) return v.text();
  if (v.kind_case() == Value::KIND_NOT_SET || v.kind_case() == Value::kNullValue) return {};
  return to_text(v);
}

Value check_size(Value v) {
  if (v.kind_case() == Value::kText && v.text().size() > max_text_value_bytes)
    throw eval_failure{"text value longer than " + std::to_string(max_text_value_bytes) + " bytes"};
  if (v.kind_case() == Value::kList &&
      static_cast<std::size_t>(v.list().items_size()) > max_list_items)
    throw eval_failure{"list longer than " + std::to_string(max_list_items) + " items"};
  return v;
}

int compare(const Value& a, const Value& b, const char* o) {
  if (a.kind_case() == Value::kNumber && b.kind_case() == Value::kNumber)
    return a.number() < b.number() ? -1 : a.number() > b.number() ? 1 : 0;
  if (a.kind_case() == Value::kText && b.kind_case() == Value::kText)
    return a.text().compare(b.text()) < 0 ? -1 : a.text() == b.text() ? 0 : 1;
  throw eval_failure{std::string("'") + o + "' cannot compare " + kind_name(a) + " with " +
                     kind_name(b)};
}

Value call(const expr_node& e, const var_reader& vars) {
  std::vector<Value> a;
  a.reserve(e.args.size());
  for (const auto& x : e.args) a.push_back(eval(*x, vars));
  const std::string& n = e.name;
  if (n == "len") {
    if (a[0].kind_case() == Value::kList) return num(a[0].list().items_size());
    if (a[0].kind_case() == Value::kObject) return num(a[0].object().fields_size());
    return num(static_cast<double>(need_text(a[0], "len").size()));
  }
  if (n == "lower") return txt(to_lower(need_text(a[0], "lower")));
  if (n == "upper") {
    std::string s = need_text(a[0], "upper");
    for (auto& c : s)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return txt(std::move(s));
  }
  if (n == "trim") return txt(trim(need_text(a[0], "trim")));
  if (n == "contains") {
    if (a[0].kind_case() == Value::kList) {
      for (const auto& it : a[0].list().items())
        if (values_equal(it, a[1])) return boolean(true);
      return boolean(false);
    }
    return boolean(need_text(a[0], "contains").find(need_text(a[1], "contains")) !=
                   std::string::npos);
  }
  if (n == "starts_with") {
    auto s = need_text(a[0], n.c_str()), p = need_text(a[1], n.c_str());
    return boolean(s.compare(0, p.size(), p) == 0);
  }
  if (n == "ends_with") {
    auto s = need_text(a[0], n.c_str()), p = need_text(a[1], n.c_str());
    return boolean(s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0);
  }
  if (n == "text") return txt(to_text(a[0]));
  if (n == "number") {
    if (a[0].kind_case() == Value::kNumber) return a[0];
    if (a[0].kind_case() == Value::kBoolean) return num(a[0].boolean() ? 1 : 0);
    std::string s = trim(need_text(a[0], "number"));
    char* endp = nullptr;
    double d = std::strtod(s.c_str(), &endp);
    if (s.empty() || *endp != '\0') throw eval_failure{"number(): '" + s + "' is not a number"};
    return num(d);
  }
  if (n == "round") {
    double x = need_number(a[0], "round");
    double digits = a.size() > 1 ? need_number(a[1], "round") : 0;
    double f = std::pow(10.0, digits);
    return num(std::round(x * f) / f);
  }
  if (n == "floor") return num(std::floor(need_number(a[0], "floor")));
  if (n == "ceil") return num(std::ceil(need_number(a[0], "ceil")));
  if (n == "abs") return num(std::fabs(need_number(a[0], "abs")));
  if (n == "min") return num(std::min(need_number(a[0], "min"), need_number(a[1], "min")));
  if (n == "max") return num(std::max(need_number(a[0], "max"), need_number(a[1], "max")));
  if (n == "is_set")
    return boolean(a[0].kind_case() != Value::KIND_NOT_SET &&
                   a[0].kind_case() != Value::kNullValue);
  if (n == "default")
    return (a[0].kind_case() == Value::KIND_NOT_SET || a[0].kind_case() == Value::kNullValue)
               ? a[1]
               : a[0];
  if (n == "replace") {
    std::string s = need_text(a[0], "replace"), from = need_text(a[1], "replace"),
                to = need_text(a[2], "replace");
    if (from.empty()) return txt(s);
    std::string out;
    std::size_t p = 0;
    for (auto q = s.find(from); q != std::string::npos; q = s.find(from, p)) {
      out.append(s, p, q - p).append(to);
      p = q + from.size();
      if (out.size() > max_text_value_bytes) break;
    }
    out.append(s, std::min(p, s.size()), std::string::npos);
    return check_size(txt(std::move(out)));
  }
  if (n == "substr") {
    std::string s = need_text(a[0], "substr");
    double start = need_number(a[1], "substr");
    double len = a.size() > 2 ? need_number(a[2], "substr") : static_cast<double>(s.size());
    if (start < 0) start = 0;
    if (len < 0) len = 0;
    auto b = std::min(static_cast<std::size_t>(start), s.size());
    return txt(s.substr(b, static_cast<std::size_t>(std::min(len, 1e9))));
  }
  if (n == "join") {
    if (a[0].kind_case() != Value::kList) throw eval_failure{"join() needs a list"};
    std::string sep = need_text(a[1], "join"), out;
    for (int i = 0; i < a[0].list().items_size(); ++i) {
      if (i) out += sep;
      out += to_text(a[0].list().items(i));
    }
    return check_size(txt(std::move(out)));
  }
  if (n == "append") {
    Value out;
    if (a[0].kind_case() == Value::kList)
      *out.mutable_list() = a[0].list();
    else
      out.mutable_list();
    *out.mutable_list()->add_items() = a[1];
    return check_size(std::move(out));
  }
  throw eval_failure{"unknown function '" + n + "'"};
}

}  // namespace

bool truthy(const Value& v) {
  switch (v.kind_case()) {
    case Value::kBoolean:
      return v.boolean();
    case Value::kNumber:
      return v.number() != 0;
    case Value::kText:
      return !v.text().empty();
    case Value::kList:
      return v.list().items_size() > 0;
    case Value::kObject:
      return true;
    default:
      return false;
  }
}

bool values_equal(const Value& a, const Value& b) {
  auto an = a.kind_case() == Value::KIND_NOT_SET || a.kind_case() == Value::kNullValue;
  auto bn = b.kind_case() == Value::KIND_NOT_SET || b.kind_case() == Value::kNullValue;
  if (an || bn) return an && bn;
  if (a.kind_case() != b.kind_case()) return false;
  switch (a.kind_case()) {
    case Value::kBoolean:
      return a.boolean() == b.boolean();
    case Value::kNumber:
      return a.number() == b.number();
    case Value::kText:
      return a.text() == b.text();
    case Value::kList: {
      if (a.list().items_size() != b.list().items_size()) return false;
      for (int i = 0; i < a.list().items_size(); ++i)
        if (!values_equal(a.list().items(i), b.list().items(i))) return false;
      return true;
    }
    case Value::kObject: {
      if (a.object().fields_size() != b.object().fields_size()) return false;
      for (int i = 0; i < a.object().fields_size(); ++i)
        if (a.object().fields(i).key() != b.object().fields(i).key() ||
            !values_equal(a.object().fields(i).value(), b.object().fields(i).value()))
          return false;
      return true;
    }
    default:
      return false;
  }
}

Value eval(const expr_node& e, const var_reader& vars) {
  switch (e.kind) {
    case op::literal:
      return e.literal;
    case op::var:
      return vars(e.var);
    case op::field: {
      Value base = eval(*e.args[0], vars);
      if (base.kind_case() == Value::kObject)
        for (const auto& f : base.object().fields())
          if (f.key() == e.name) return f.value();
      Value null;
      null.set_null_value(true);
      return null;
    }
    case op::neg:
      return num(-need_number(eval(*e.args[0], vars), "'-'"));
    case op::not_:
      return boolean(!truthy(eval(*e.args[0], vars)));
    case op::and_:
      return boolean(truthy(eval(*e.args[0], vars)) && truthy(eval(*e.args[1], vars)));
    case op::or_:
      return boolean(truthy(eval(*e.args[0], vars)) || truthy(eval(*e.args[1], vars)));
    case op::add: {
      Value l = eval(*e.args[0], vars), r = eval(*e.args[1], vars);
      if (l.kind_case() == Value::kNumber && r.kind_case() == Value::kNumber)
        return num(l.number() + r.number());
      if (l.kind_case() == Value::kText || r.kind_case() == Value::kText)
        return check_size(txt(to_text(l) + to_text(r)));
      throw eval_failure{std::string("'+' cannot add ") + kind_name(l) + " and " + kind_name(r)};
    }
    case op::sub:
      return num(need_number(eval(*e.args[0], vars), "'-'") -
                 need_number(eval(*e.args[1], vars), "'-'"));
    case op::mul:
      return num(need_number(eval(*e.args[0], vars), "'*'") *
                 need_number(eval(*e.args[1], vars), "'*'"));
    case op::div: {
      double l = need_number(eval(*e.args[0], vars), "'/'");
      double r = need_number(eval(*e.args[1], vars), "'/'");
      if (r == 0) throw eval_failure{"division by zero"};
      return num(l / r);
    }
    case op::mod: {
      double l = need_number(eval(*e.args[0], vars), "'%'");
      double r = need_number(eval(*e.args[1], vars), "'%'");
      if (r == 0) throw eval_failure{"division by zero in '%'"};
      return num(std::fmod(l, r));
    }
    case op::eq:
      return boolean(values_equal(eval(*e.args[0], vars), eval(*e.args[1], vars)));
    case op::ne:
      return boolean(!values_equal(eval(*e.args[0], vars), eval(*e.args[1], vars)));
    case op::lt:
      return boolean(compare(eval(*e.args[0], vars), eval(*e.args[1], vars), "<") < 0);
    case op::le:
      return boolean(compare(eval(*e.args[0], vars), eval(*e.args[1], vars), "<=") <= 0);
    case op::gt:
      return boolean(compare(eval(*e.args[0], vars), eval(*e.args[1], vars), ">") > 0);
    case op::ge:
      return boolean(compare(eval(*e.args[0], vars), eval(*e.args[1], vars), ">=") >= 0);
    case op::call:
      return call(e, vars);
  }
  throw eval_failure{"bad expression"};
}

parsed_expr parse_expr(std::string_view text, const var_resolver& vars) {
  if (trim(text).empty()) {
    parsed_expr out;
    out.errors.push_back({0, "empty expression"});
    return out;
  }
  return parser(text, vars).run();
}

parsed_template parse_template(std::string_view text, const var_resolver& vars) {
  parsed_template out;
  std::size_t pos = 0;
  std::string lit;
  while (pos < text.size()) {
    auto open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      lit.append(text.substr(pos));
      break;
    }
    // "\{{" is a literal "{{", as in Handlebars; "\\{{" is a literal backslash
    // before a placeholder. Other backslashes are plain text.
    bool escaped = open > pos && text[open - 1] == '\\';
    bool doubled = escaped && open - 1 > pos && text[open - 2] == '\\';
    lit.append(text.substr(pos, open - pos - (escaped ? 1 : 0)));
    if (escaped && !doubled) {
      lit.append("{{");
      pos = open + 2;
      continue;
    }
    auto close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      out.errors.push_back({open, "'{{' without a matching '}}'"});
      return out;
    }
    auto inner = text.substr(open + 2, close - open - 2);
    std::string t = trim(inner);
    if (t.rfind("secret.", 0) == 0) {
      // Secrets are never read by the VM: a placeholder the caller fills in
      // where render marks it (bot::resolve_secrets).
      if (!lit.empty()) out.parts.push_back({std::move(lit), nullptr, {}, 0});
      lit.clear();
      std::string name = t.substr(7);
      if (name.empty()) out.errors.push_back({open, "a secret needs a name: {{secret.NAME}}"});
      out.parts.push_back({"{{secret." + name + "}}", nullptr, std::move(name), open});
    } else {
      if (!lit.empty()) out.parts.push_back({std::move(lit), nullptr, {}, 0});
      lit.clear();
      auto p = parse_expr(inner, vars);
      for (auto& e : p.errors) out.errors.push_back({open + 2 + e.offset, e.message});
      out.parts.push_back({{}, p.root, {}, open});
    }
    pos = close + 2;
  }
  if (!lit.empty()) out.parts.push_back({std::move(lit), nullptr, {}, 0});
  return out;
}

std::string render(const parsed_template& t, const var_reader& vars,
                   std::vector<secret_mark>* secrets) {
  std::string out;
  for (const auto& p : t.parts) {
    if (p.expr) {
      out += to_text(eval(*p.expr, vars));
    } else {
      if (secrets != nullptr && !p.secret.empty()) secrets->push_back({out.size(), p.secret});
      out += p.literal;
    }
  }
  return out;
}

}  // namespace parley::bot::detail
