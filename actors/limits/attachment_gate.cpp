#include "actors/limits/attachment_gate.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "src/store/catalog.hpp"

namespace parley::actors {

attachment_probe::attachment_probe(prometheus::Registry* metrics) : metrics_(metrics) {}

void attachment_probe::refused(std::string_view channel, channels::text::refusal why) {
  if (metrics_ == nullptr) return;
  // prometheus-cpp hands back the family registered before under the same name.
  prometheus::BuildCounter()
      .Name("parley_attachments_refused_total")
      .Help(
          "Attachments users sent that their tenant's limits refused (they never reached the "
          "bot), by channel and reason (too_many, url_too_long, scheme, content_type)")
      .Register(*metrics_)
      .Add({{"channel", std::string(channel)},
            {"reason", std::string(channels::text::refusal_name(why))}})
      .Increment();
}

std::string refusal_note(const std::vector<channels::text::attachment_verdict>& verdicts) {
  std::string out;
  for (const auto& v : verdicts) {
    if (!v.refused) continue;
    if (!out.empty()) out += '\n';
    out += "[attachment " + std::to_string(v.index + 1) + " refused: ";
    out += channels::text::refusal_name(*v.refused);
    out += ": " + v.detail + "]";
  }
  return out;
}

void load_tenant_limits(store::postgres_client& pg, const std::string& tenant,
                        std::function<void(result<channels::text::attachment_limits>)> done) {
  store::run_job(pg, store::get_tenant_limits(tenant),
                 [done = std::move(done)](result<std::optional<store::tenant_limits_record>> r) {
                   if (!r) return done(r.err());
                   channels::text::attachment_limits l;
                   if (*r) {
                     l.max_attachments = static_cast<std::size_t>((*r)->max_attachments);
                     l.max_url_bytes = static_cast<std::size_t>((*r)->max_url_bytes);
                     l.schemes = (*r)->schemes;
                     l.content_types = (*r)->content_types;
                   }
                   done(std::move(l));
                 });
}

}  // namespace parley::actors
