#pragma once
/// What the gateways do with the attachments of one inbound message: check them
/// against the tenant's limits (src/channels/text/attachments.hpp), count the refused
/// ones in `parley_attachments_refused_total{channel,reason}`, and say in one line
/// what the transcript records of them (the bot never sees it).
///
/// Threads: any; the probe's counters are thread-safe.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "src/channels/text/attachments.hpp"
#include "src/common/result.hpp"

namespace prometheus {
class Registry;
}

namespace parley::store {
class postgres_client;
}

namespace parley::actors {

/// The counter family of refused attachments, registered once per registry.
class attachment_probe {
 public:
  /// `metrics` may be null (no metric); else it must outlive the probe.
  explicit attachment_probe(prometheus::Registry* metrics);
  void refused(std::string_view channel, channels::text::refusal why);

 private:
  prometheus::Registry* metrics_;
};

/// The transcript note for the refused verdicts of `verdicts`, one line each:
/// "[attachment 3 refused: content_type: content type \"application/zip\" is not
/// allowed]" (1-based positions). Empty when none was refused.
std::string refusal_note(const std::vector<channels::text::attachment_verdict>& verdicts);

/// Loads `tenant`'s limits from Postgres for the limits cache (the defaults without a
/// row); `done` once, on a Postgres pool thread. A named function rather than a
/// lambda in parleyd.cpp: GCC 12 crashed on a generic lambda there.
void load_tenant_limits(store::postgres_client& pg, const std::string& tenant,
                        std::function<void(result<channels::text::attachment_limits>)> done);

}  // namespace parley::actors
