#include "src/admin/deploy.hpp"

#include <utility>

#include "src/bot/bot.hpp"

namespace parley::admin {

store::catalog_job<deploy_outcome> deploy_version(deploy_request req) {
  return [req = std::move(req)](pqxx::transaction_base& tx) {
    // The ids and the tenant are checked first: a bad one fails even a file that
    // does not compile.
    store::check_version_target(req.tenant, req.bot)(tx);
    deploy_outcome out;
    auto compiled = bot::compile(
        req.source, req.file_name.empty() ? req.bot + ".yaml" : req.file_name, req.compile);
    store::new_version v;
    for (const auto& d : compiled.diagnostics) {
      deploy_diagnostic x{d.level == bot::severity::error ? "error" : "warning", d.line, d.column,
                          d.message};
      if (d.level == bot::severity::warning) v.warnings.push_back(x);
      out.diagnostics.push_back(std::move(x));
    }
    if (!compiled.ok()) return out;
    v.tenant = req.tenant;
    v.bot = req.bot;
    v.source = req.source;
    v.program = bot::serialize(*compiled.program);
    v.program_id = compiled.program->id();
    v.deployed_by = req.deployed_by;
    v.activate = req.activate;
    auto stored = store::store_version(std::move(v))(tx);
    out.deployed = true;
    out.version = stored.version;
    out.program_id = compiled.program->id();
    out.activated = stored.activated;
    return out;
  };
}

}  // namespace parley::admin
