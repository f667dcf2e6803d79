#pragma once
/// parley::channels::text — the per-tenant limits on the attachments a user sends.
///
/// Pure functions: every gateway (Direct Line, Twilio MMS, Messenger) checks the
/// attachments of one inbound message against its tenant's `attachment_limits`
/// before the message reaches the bot. Accepted attachments reach the bot and the
/// transcript as URLs with their types; refused ones only reach the transcript,
/// with the reason.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::channels::text {

/// What a tenant lets its users attach. The defaults are what a tenant without a
/// row in `tenant_limits` gets.
struct attachment_limits {
  /// Attachments per message; the ones after the first `max_attachments` are refused.
  std::size_t max_attachments = 10;
  /// Bytes of one URL.
  std::size_t max_url_bytes = 2048;
  /// URL schemes, lower case. `javascript`, `data`, `file` and any scheme other
  /// than `http`/`https` are never allowed, whatever this list says.
  std::vector<std::string> schemes{"https", "http"};
  /// Content type patterns: `type/subtype`, `type/*` or `*/*`, lower case.
  std::vector<std::string> content_types{"image/*", "audio/*", "video/*", "application/pdf",
                                         "text/plain"};

  bool operator==(const attachment_limits& o) const {
    return max_attachments == o.max_attachments && max_url_bytes == o.max_url_bytes &&
           schemes == o.schemes && content_types == o.content_types;
  }
};

/// The largest values an operator may set.
inline constexpr std::size_t max_attachments_ceiling = 100;
inline constexpr std::size_t max_url_bytes_ceiling = 65536;

/// Why one attachment was refused.
enum class refusal { too_many, url_too_long, scheme, content_type };

/// "too_many", "url_too_long", "scheme", "content_type": the `reason` label of
/// parley_attachments_refused_total and the word in the transcript.
std::string_view refusal_name(refusal r);

/// One attachment as a channel delivered it.
struct attachment_ref {
  std::string url;
  std::string content_type;
};

/// The verdict on one attachment, in the order they were given.
struct attachment_verdict {
  std::size_t index = 0;           ///< position in the message
  std::optional<refusal> refused;  ///< empty: accepted
  std::string detail;              ///< for a refusal, what was wrong, without the URL
};

/// Checks each attachment in order: the `max_attachments`-th and later are
/// `too_many`; then the URL length, the scheme (case-insensitive), the content
/// type (case-insensitive, parameters after ';' ignored). The first failing rule
/// is the reason. Never throws.
std::vector<attachment_verdict> check_attachments(const attachment_limits& limits,
                                                  const std::vector<attachment_ref>& items);

/// Empty when `scheme` may be put in `schemes`, else what is wrong with it.
std::optional<std::string> invalid_scheme(std::string_view scheme);

/// Empty when `pattern` is a valid content type pattern (`a/b`, `a/*`, `*/*`, lower
/// case token characters), else what is wrong with it.
std::optional<std::string> invalid_content_type_pattern(std::string_view pattern);

/// Whether `content_type` (already lower case, without parameters) matches `pattern`.
bool content_type_matches(std::string_view pattern, std::string_view content_type);

}  // namespace parley::channels::text
