#pragma once
/// Prometheus metrics for one node. Each module owns a `*_probe` that registers its
/// families in the node's registry; `render` produces the `/metrics` text, adding the
/// standard `process_*` metrics read from /proc at scrape time.

#include <memory>
#include <string>

#include <prometheus/registry.h>

namespace parley::metrics {

/// A new registry. Thread-safe, as prometheus::Registry is.
std::shared_ptr<prometheus::Registry> make_registry();

/// The Prometheus text exposition (version 0.0.4) of `registry` plus process metrics.
std::string render(prometheus::Registry& registry);

/// Content type of `render`'s output.
inline constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace parley::metrics
