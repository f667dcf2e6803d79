#pragma once
/// parley::channels::json — the JSON reader every channel codec uses.
///
/// `read` parses a request body with simdjson (On-Demand API) into a flat
/// `document`: one vector of values in document order, so that a codec looks
/// members up, checks their types and names the field at fault without a DOM
/// per value. simdjson stays inside reader.cpp.
///
/// What `read` accepts is exactly what `nlohmann::json::parse` accepts: RFC 8259
/// JSON with nothing after the value but blanks, or a NUL byte and anything; one
/// leading UTF-8 byte order mark skipped; strings of well-formed UTF-8 without raw
/// control characters, whose \u escapes pair their surrogates; no number beyond a
/// double's range. Numbers get the values nlohmann gives them: without fraction or
/// exponent a signed integer when negative, unsigned otherwise, a double when it
/// does not fit 64 bits (and strtod's answer on underflow). A repeated key keeps
/// its last value for `member`. The nesting depth is bounded by the caller
/// (`nesting_depth` before `read`); simdjson refuses beyond 1024 levels.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace parley::channels::json {

/// A value of a parsed document. The elements (members) of an array (object)
/// follow it in the document, each after the whole subtree of the one before.
class value {
 public:
  enum class kind : std::uint8_t {
    null,
    boolean,
    integer,
    unsigned_integer,
    floating,
    string,
    array,
    object
  };

  kind type() const { return kind_; }
  bool is_null() const { return kind_ == kind::null; }
  bool is_boolean() const { return kind_ == kind::boolean; }
  bool is_number() const { return is_number_integer() || kind_ == kind::floating; }
  bool is_number_integer() const {
    return kind_ == kind::integer || kind_ == kind::unsigned_integer;
  }
  bool is_number_unsigned() const { return kind_ == kind::unsigned_integer; }
  bool is_string() const { return kind_ == kind::string; }
  bool is_array() const { return kind_ == kind::array; }
  bool is_object() const { return kind_ == kind::object; }

  bool boolean() const { return boolean_; }
  /// An integer as a signed 64-bit value (an unsigned one converted).
  std::int64_t int64() const {
    return kind_ == kind::unsigned_integer ? static_cast<std::int64_t>(u_) : i_;
  }
  /// An integer as an unsigned 64-bit value (a signed one converted).
  std::uint64_t uint64() const {
    return kind_ == kind::unsigned_integer ? u_ : static_cast<std::uint64_t>(i_);
  }
  /// Any number as a double.
  double number() const {
    switch (kind_) {
      case kind::integer:
        return static_cast<double>(i_);
      case kind::unsigned_integer:
        return static_cast<double>(u_);
      default:
        return d_;
    }
  }
  /// A string's text, decoded.
  std::string_view str() const { return str_; }
  /// The key of a member of an object, decoded.
  std::string_view key() const { return key_; }
  /// Elements of an array, members of an object.
  std::size_t size() const { return size_; }
  /// The first element or member; valid when size() > 0.
  const value* first() const { return this + 1; }
  /// The next element or member of the same array or object.
  const value* next() const { return this + span_; }

  /// The member `name` of an object (the last one when repeated), or nullptr.
  const value* member(std::string_view name) const {
    const value* found = nullptr;
    const value* m = first();
    for (std::size_t i = 0; i < size_; ++i, m = m->next())
      if (m->key_ == name) found = m;
    return found;
  }

 private:
  friend class document_builder;
  kind kind_ = kind::null;
  bool boolean_ = false;
  std::uint32_t span_ = 1;  // values in this subtree, this one included
  std::uint32_t size_ = 0;
  union {
    std::int64_t i_ = 0;
    std::uint64_t u_;
    double d_;
  };
  std::string_view str_;
  std::string_view key_;
};

/// A parsed document. Its strings and keys are views of its own buffer, so it is
/// never copied or moved; it outlives neither the text nor the next `read` into it.
class document {
 public:
  document() = default;
  document(const document&) = delete;
  document& operator=(const document&) = delete;

  /// The root value; valid after a successful `read`.
  const value& root() const { return values_.front(); }

 private:
  friend class document_builder;
  friend bool read(std::string_view text, std::size_t capacity, document& doc);
  std::vector<value> values_;
  std::string strings_;  // decoded strings and keys, reserved once to the text's size
};

/// Parses `text` into `doc` (replacing what it held). False when `text` is not
/// JSON (see the file comment). `capacity`: bytes readable from text.data(), at
/// least text.size(); with simdjson's padding (64 bytes) beyond the text, the text
/// is read in place, else it is copied into a padded buffer first. Never throws
/// but std::bad_alloc.
bool read(std::string_view text, std::size_t capacity, document& doc);

/// read() of a string, in place when its capacity leaves the padding.
inline bool read(const std::string& text, document& doc) {
  return read(text, text.capacity(), doc);
}

/// Nesting depth of a JSON text, counted outside strings: cheap, and it keeps
/// hostile bodies ("[[[[...") away from every recursive step after parsing. The
/// text need not be JSON.
int nesting_depth(std::string_view text);

/// nesting_depth(text) > max, most often without walking the text byte by byte:
/// the depth is at most the number of opening brackets, counted first.
bool nested_deeper_than(std::string_view text, int max);

}  // namespace parley::channels::json
