#pragma once
/// parley::secrets: the tenants' secrets at rest. Values are sealed with AES-256-GCM
/// (OpenSSL EVP) under the node's master key, with a fresh random 12-byte nonce per
/// value and "tenant \0 name" as additional authenticated data, so a ciphertext
/// copied to another tenant's or another name's row fails to open.
///
/// The master key comes from the environment (`PARLEY_SECRETS_KEY`: 64 hex digits or
/// the base64 of 32 bytes); `PARLEY_SECRETS_PREVIOUS_KEYS` (a comma list of keys in
/// the same format) lets rows sealed under earlier keys still open until a rotation
/// re-seals them under the current key. Each sealed value records the id of its key:
/// the first 8 bytes of SHA-256(key), in hex (16 characters), which names a key
/// without revealing it.
///
/// No CAF, no database: src/store/catalog/secrets.hpp stores what this seals. Errors
/// never hold a key or a value. Pure functions and an immutable keyring: any thread.

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/result.hpp"

namespace parley::secrets {

/// The largest value a secret may hold, in bytes.
inline constexpr std::size_t max_value_bytes = 8192;

/// Whether `name` is a valid secret name: 1 to 64 of [A-Za-z0-9_.-], the characters
/// the bot compiler accepts in `{{secret.NAME}}` (src/bot/compiler_checks.cpp).
bool valid_name(std::string_view name);

/// Why `name` is not valid, one sentence naming it ("" when it is).
std::string name_problem(std::string_view name);

/// One 256-bit master key and its id.
struct master_key {
  std::array<unsigned char, 32> bytes{};
  std::string id;  ///< hex of the first 8 bytes of SHA-256(bytes)
};

/// Parses a key given as 64 hex digits or as base64 (standard or URL alphabet,
/// padding optional) of exactly 32 bytes; surrounding whitespace is ignored.
/// `what` names the source in the error ("PARLEY_SECRETS_KEY"). Error code:
/// `bad_secrets_key`, with a message that never holds the text.
result<master_key> parse_key(std::string_view text, std::string_view what);

/// The id of a 32-byte key (see master_key::id).
std::string key_id(const std::array<unsigned char, 32>& bytes);

/// The keys a node opens and seals with: the current key (absent on a node started
/// without PARLEY_SECRETS_KEY) and any previous keys.
class keyring {
 public:
  keyring() = default;
  keyring(std::optional<master_key> current, std::vector<master_key> previous);

  /// From PARLEY_SECRETS_KEY and PARLEY_SECRETS_PREVIOUS_KEYS. An unset or empty
  /// PARLEY_SECRETS_KEY is a keyring without a current key (not an error); a
  /// malformed one, or previous keys without a current key, is `bad_secrets_key`.
  static result<keyring> from_env();
  /// The same from given texts (`previous`: comma list, may be empty).
  static result<keyring> from_text(std::string_view current, std::string_view previous);

  bool has_current() const { return current_.has_value(); }
  /// Precondition: has_current().
  const master_key& current() const { return *current_; }
  /// The key with this id, current or previous; null when neither has it.
  const master_key* find(std::string_view id) const;
  /// Every id this keyring knows, current first.
  std::vector<std::string> ids() const;

 private:
  std::optional<master_key> current_;
  std::vector<master_key> previous_;
};

/// A sealed value as stored: ciphertext ends with the 16-byte GCM tag.
struct sealed {
  std::string key_id;
  std::string nonce;       ///< 12 raw bytes
  std::string ciphertext;  ///< raw bytes: encrypted value + tag
};

/// Seals `value` for (tenant, name) under `key` with a fresh random nonce.
sealed seal(const master_key& key, std::string_view tenant, std::string_view name,
            std::string_view value);

/// Opens a sealed value of (tenant, name). Errors: `secrets_key_unknown` (no key of
/// the keyring has its key id; the message names the id), `secret_undecryptable`
/// (wrong key, tampered bytes, or a row of another tenant or name).
result<std::string> open(const keyring& keys, std::string_view tenant, std::string_view name,
                         const sealed& s);

}  // namespace parley::secrets
