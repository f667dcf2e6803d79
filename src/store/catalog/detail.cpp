#include "src/store/catalog/detail.hpp"

namespace parley::store::detail {

std::string ms(const std::string& column) {
  return "(extract(epoch from " + column + ") * 1000)::bigint";
}

std::string at_or_now(const std::string& param) {
  return "CASE WHEN " + param + "::bigint = 0 THEN now() ELSE to_timestamp(" + param +
         "::bigint / 1000.0) END";
}

void require_id(const std::string& what, const std::string& id) {
  if (!valid_catalog_id(id))
    fail("invalid_argument", what + " '" + id +
                                 "' is not valid: use 1 to 64 letters, digits, '_', '-' or '.', "
                                 "starting with a letter or digit");
}

void require_tenant(pqxx::transaction_base& tx, const std::string& tenant) {
  require_id("tenant id", tenant);
  if (tx.exec_params("SELECT 1 FROM tenants WHERE id = $1", tenant).empty())
    fail("tenant_not_found", "tenant '" + tenant + "' does not exist");
}

std::string clean_text(const std::string& in) {
  // Fast path: plain ASCII without NUL, the common case, is already clean.
  bool plain = true;
  for (unsigned char c : in)
    if (c == 0 || c >= 0x80) {
      plain = false;
      break;
    }
  if (plain) return in;
  std::string out;
  out.reserve(in.size());
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t n = in.size();
  for (std::size_t i = 0; i < n;) {
    unsigned char c = s[i];
    if (c == 0) {
      ++i;
      continue;
    }
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned int cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80)
        ok = false;
      else
        cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (ok) {
      // Reject overlong forms, surrogates and values past U+10FFFF.
      static const unsigned int min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= min_cp[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok) {
      out.append(in, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace parley::store::detail

namespace parley::store {

bool valid_catalog_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(id[0])) return false;
  for (char c : id)
    if (!alnum(c) && c != '_' && c != '-' && c != '.') return false;
  return true;
}

}  // namespace parley::store
