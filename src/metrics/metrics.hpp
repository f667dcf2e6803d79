#pragma once
/// Prometheus metrics for one node. Each module owns a `*_probe` that registers its
/// families in the node's registry; `render` produces the `/metrics` text, adding the
/// standard `process_*` metrics read from /proc at scrape time.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/labels.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

namespace parley::metrics {

/// A new registry. Thread-safe, as prometheus::Registry is.
std::shared_ptr<prometheus::Registry> make_registry();

/// Adds families computed at scrape time (counters a client keeps itself, say).
using collector = std::function<void(std::vector<prometheus::MetricFamily>&)>;

/// The Prometheus text exposition (version 0.0.4) of `registry`, process metrics and
/// whatever `extra` adds.
std::string render(prometheus::Registry& registry, const std::vector<collector>& extra = {});

/// Registers (or finds) family `name` in `reg` and returns its sample with `labels`.
/// The one way a probe makes a counter, gauge or histogram; the sample lives as long
/// as `reg`.
prometheus::Counter& counter(prometheus::Registry& reg, const std::string& name,
                             const std::string& help, const prometheus::Labels& labels = {});
prometheus::Gauge& gauge(prometheus::Registry& reg, const std::string& name,
                         const std::string& help, const prometheus::Labels& labels = {});
prometheus::Histogram& histogram(prometheus::Registry& reg, const std::string& name,
                                 const std::string& help,
                                 const prometheus::Histogram::BucketBoundaries& buckets,
                                 const prometheus::Labels& labels = {});

/// A family of one unlabelled counter or gauge sample, for collectors.
prometheus::MetricFamily single_sample(const std::string& name, const std::string& help,
                                       prometheus::MetricType type, double value);

/// Content type of `render`'s output.
inline constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace parley::metrics
