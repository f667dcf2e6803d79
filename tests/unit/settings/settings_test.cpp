#include "src/settings/settings.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "src/log/log.hpp"

namespace parley::settings {
namespace {

const char* minimal = R"(
redis:
  url: redis://127.0.0.1:6379
postgres:
  url: postgresql:///parley
)";

TEST(Settings, DefaultsApplyWhenKeysAreAbsent) {
  auto s = parse(minimal, "t.yaml", {});
  ASSERT_TRUE(s.ok()) << s.err().message;
  EXPECT_EQ(s->http.port, 8080);
  EXPECT_EQ(s->http.address, "127.0.0.1");
  EXPECT_EQ(s->postgres.pool_size, 4);
  EXPECT_TRUE(s->postgres.migrate);
  EXPECT_EQ(s->log.format, "json");
  EXPECT_EQ(s->redis.url, "redis://127.0.0.1:6379");
}

TEST(Settings, FileValuesAreRead) {
  auto s =
      parse(std::string(minimal) + "http:\n  port: 9001\n  threads: 3\nlog:\n  format: logfmt\n",
            "t.yaml", {});
  ASSERT_TRUE(s.ok()) << s.err().message;
  EXPECT_EQ(s->http.port, 9001);
  EXPECT_EQ(s->http.threads, 3);
  EXPECT_EQ(s->log.format, "logfmt");
}

TEST(Settings, HostileClientLimitsHaveDefaultsAndOverrides) {
  auto d = parse(minimal, "t.yaml", {});
  ASSERT_TRUE(d.ok()) << d.err().message;
  EXPECT_EQ(d->http.header_timeout_ms, 10000);
  EXPECT_EQ(d->http.max_connections, 0);  // derived from RLIMIT_NOFILE by the server
  EXPECT_EQ(d->http.max_connections_per_address, 256);
  auto s = parse(
      std::string(minimal) + "http:\n  header_timeout_ms: 2000\n  max_connections_per_address: 8\n",
      "t.yaml", {{"PARLEY_HTTP_MAX_CONNECTIONS", "5000"}});
  ASSERT_TRUE(s.ok()) << s.err().message;
  EXPECT_EQ(s->http.header_timeout_ms, 2000);
  EXPECT_EQ(s->http.max_connections, 5000);
  EXPECT_EQ(s->http.max_connections_per_address, 8);
  auto bad = parse(minimal, "t.yaml", {{"PARLEY_HTTP_HEADER_TIMEOUT_MS", "5"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().message,
            "environment: PARLEY_HTTP_HEADER_TIMEOUT_MS: expected an integer from 100 to 3600000, "
            "got '5'");
  EXPECT_NE(describe().find("http.max_connections_per_address"), std::string::npos);
}

TEST(Settings, EnvironmentOverridesTheFile) {
  auto s = parse(std::string(minimal) + "http:\n  port: 9001\n", "t.yaml",
                 {{"PARLEY_HTTP_PORT", "9002"},
                  {"PARLEY_POSTGRES_MIGRATE", "false"},
                  {"PARLEY_NODE_NAME", "n7"}});
  ASSERT_TRUE(s.ok()) << s.err().message;
  EXPECT_EQ(s->http.port, 9002);
  EXPECT_FALSE(s->postgres.migrate);
  EXPECT_EQ(s->node.name, "n7");
}

TEST(Settings, TwelveFactorNamesWinOverEverything) {
  auto s = parse(minimal, "t.yaml",
                 {{"PARLEY_HTTP_PORT", "9002"},
                  {"PORT", "9003"},
                  {"DATABASE_URL", "postgresql://db/x"},
                  {"REDIS_URL", "unix:///tmp/r.sock"}});
  ASSERT_TRUE(s.ok()) << s.err().message;
  EXPECT_EQ(s->http.port, 9003);
  EXPECT_EQ(s->postgres.url, "postgresql://db/x");
  EXPECT_EQ(s->redis.url, "unix:///tmp/r.sock");
}

TEST(Settings, RequiredValuesMayComeFromTheEnvironmentAlone) {
  auto s = parse("", "t.yaml", {{"DATABASE_URL", "postgresql://db/x"}, {"REDIS_URL", "redis://r"}});
  ASSERT_TRUE(s.ok()) << s.err().message;
}

TEST(Settings, RuntimeShardsIsADeprecatedAliasOfRuntimeStripes) {
  auto s = parse(std::string(minimal) + "runtime:\n  shards: 8\n", "t.yaml", {});
  ASSERT_TRUE(s.ok()) << s.err().message;
  EXPECT_EQ(s->runtime.stripes, 8);
  ASSERT_EQ(s->warnings.size(), 1u);
  EXPECT_EQ(s->warnings[0], "t.yaml: runtime.shards is deprecated: use runtime.stripes");
  auto e = parse(minimal, "t.yaml", {{"PARLEY_RUNTIME_SHARDS", "4"}});
  ASSERT_TRUE(e.ok()) << e.err().message;
  EXPECT_EQ(e->runtime.stripes, 4);
  ASSERT_EQ(e->warnings.size(), 1u);
  EXPECT_EQ(e->warnings[0],
            "environment: PARLEY_RUNTIME_SHARDS is deprecated: use runtime.stripes");
  auto n = parse(std::string(minimal) + "runtime:\n  stripes: 16\n", "t.yaml", {});
  ASSERT_TRUE(n.ok()) << n.err().message;
  EXPECT_EQ(n->runtime.stripes, 16);
  EXPECT_TRUE(n->warnings.empty());
}

TEST(Settings, ActionsEgressAllowIsAListInYamlAndCommaSeparatedInTheEnvironment) {
  auto d = parse(minimal, "t.yaml", {});
  ASSERT_TRUE(d.ok()) << d.err().message;
  EXPECT_TRUE(d->actions.egress_allow.empty()) << "nothing restricted is allowed by default";
  EXPECT_EQ(d->actions.max_connections_per_host, 16);
  EXPECT_EQ(d->actions.max_response_bytes, 1 << 20);
  EXPECT_EQ(d->actions.ca_file, "");
  auto s = parse(std::string(minimal) +
                     "actions:\n  egress_allow:\n    - 10.0.0.0/8\n    - 127.0.0.1:8081\n"
                     "  ca_file: /etc/parley/ca.pem\n  max_connections_per_host: 4\n"
                     "  max_response_bytes: 65536\n",
                 "t.yaml", {});
  ASSERT_TRUE(s.ok()) << s.err().message;
  EXPECT_EQ(s->actions.egress_allow, (std::vector<std::string>{"10.0.0.0/8", "127.0.0.1:8081"}));
  EXPECT_EQ(s->actions.ca_file, "/etc/parley/ca.pem");
  EXPECT_EQ(s->actions.max_connections_per_host, 4);
  EXPECT_EQ(s->actions.max_response_bytes, 65536);
  auto e = parse(std::string(minimal) + "actions:\n  egress_allow: [10.0.0.0/8]\n", "t.yaml",
                 {{"PARLEY_ACTIONS_EGRESS_ALLOW", " 127.0.0.0/8, orders.internal:8443 ,"}});
  ASSERT_TRUE(e.ok()) << e.err().message;
  EXPECT_EQ(e->actions.egress_allow,
            (std::vector<std::string>{"127.0.0.0/8", "orders.internal:8443"}));
  auto empty = parse(std::string(minimal) + "actions:\n  egress_allow: [10.0.0.0/8]\n", "t.yaml",
                     {{"PARLEY_ACTIONS_EGRESS_ALLOW", ""}});
  ASSERT_TRUE(empty.ok()) << empty.err().message;
  EXPECT_TRUE(empty->actions.egress_allow.empty()) << "an empty variable clears the list";
  auto bad =
      parse(std::string(minimal) + "actions:\n  max_connections_per_host: 0\n", "t.yaml", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("actions.max_connections_per_host"), std::string::npos)
      << bad.err().message;
  auto nested =
      parse(std::string(minimal) + "actions:\n  egress_allow:\n    - {a: b}\n", "t.yaml", {});
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.err().message.find("actions.egress_allow"), std::string::npos);
}

TEST(Settings, RuntimeActionThreadsIsDeprecatedAndIgnored) {
  auto s = parse(std::string(minimal) + "runtime:\n  action_threads: 8\n", "t.yaml", {});
  ASSERT_TRUE(s.ok()) << s.err().message;
  ASSERT_EQ(s->warnings.size(), 1u);
  EXPECT_NE(s->warnings[0].find("runtime.action_threads is deprecated"), std::string::npos);
}

TEST(Settings, UnrelatedEnvironmentVariablesAreIgnored) {
  auto s = parse(minimal, "t.yaml", {{"PARLEY_BUILD_DIR", "/x"}, {"HOME", "/root"}});
  ASSERT_TRUE(s.ok()) << s.err().message;
}

struct bad_case {
  const char* name;
  std::string yaml;
  environment env;
  const char* expected;  // substring of the one-line error
};

class SettingsErrors : public ::testing::TestWithParam<bad_case> {};

TEST_P(SettingsErrors, NameTheKeyAndTheProblem) {
  const auto& c = GetParam();
  auto s = parse(c.yaml, "cfg.yaml", c.env);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, "bad_config");
  EXPECT_NE(s.err().message.find(c.expected), std::string::npos) << s.err().message;
  EXPECT_EQ(s.err().message.find('\n'), std::string::npos) << "one line: " << s.err().message;
}

INSTANTIATE_TEST_SUITE_P(
    All, SettingsErrors,
    ::testing::Values(
        bad_case{"unknown_key",
                 std::string(minimal) + "http:\n  prot: 1\n",
                 {},
                 "cfg.yaml: http.prot: unknown key"},
        bad_case{"unknown_section",
                 std::string(minimal) + "htp:\n  port: 1\n",
                 {},
                 "cfg.yaml: htp: unknown section"},
        bad_case{"port_not_a_number",
                 std::string(minimal) + "http:\n  port: abc\n",
                 {},
                 "http.port: expected an integer from 0 to 65535, got 'abc'"},
        bad_case{"port_out_of_range",
                 std::string(minimal) + "http:\n  port: 70000\n",
                 {},
                 "http.port: expected an integer from 0 to 65535"},
        bad_case{"bool_wrong",
                 std::string(minimal) + "postgres:\n  url: x\n  migrate: maybe\n",
                 {},
                 "postgres.migrate: expected true or false, got 'maybe'"},
        bad_case{"enum_wrong",
                 std::string(minimal) + "log:\n  level: loud\n",
                 {},
                 "log.level: expected one of trace debug info warn error, got 'loud'"},
        bad_case{"section_not_a_map",
                 std::string(minimal) + "http: 5\n",
                 {},
                 "http: expected a mapping of keys"},
        bad_case{"value_not_scalar",
                 std::string(minimal) + "http:\n  port: [1, 2]\n",
                 {},
                 "http.port: expected a integer value"},
        bad_case{"top_not_a_map", "- a\n- b\n", {}, "cfg.yaml: (top level): expected a mapping"},
        bad_case{"yaml_syntax", "http:\n  port: [1\n", {}, "cfg.yaml:"},
        bad_case{"missing_redis", "postgres:\n  url: x\n", {}, "redis.url: required"},
        bad_case{"missing_postgres", "redis:\n  url: x\n", {}, "postgres.url: required"},
        bad_case{"env_unknown_key",
                 minimal,
                 {{"PARLEY_HTTP_PROT", "1"}},
                 "environment: PARLEY_HTTP_PROT: unknown key"},
        bad_case{"env_wrong_type",
                 minimal,
                 {{"PARLEY_HTTP_THREADS", "many"}},
                 "environment: PARLEY_HTTP_THREADS: expected an integer from 1 to 256, got 'many'"},
        bad_case{
            "port_env_wrong", minimal, {{"PORT", "-1"}}, "environment: PORT: expected an integer"},
        bad_case{"peer_region_without_port",
                 minimal,
                 {{"PARLEY_CLUSTER_PEER_REGIONS", "eu=10.0.0.1"}},
                 "cluster.peer_regions: region 'eu': '10.0.0.1' must be host:port"},
        bad_case{"peer_region_is_own",
                 std::string(minimal) + "node:\n  region: eu\n",
                 {{"PARLEY_CLUSTER_PEER_REGIONS", "eu=10.0.0.1:7946"}},
                 "cluster.peer_regions: region 'eu' is this node's own region"},
        bad_case{"peer_region_twice",
                 minimal,
                 {{"PARLEY_CLUSTER_PEER_REGIONS", "eu=a:1;eu=b:2"}},
                 "region 'eu' is named twice"},
        bad_case{"peer_region_without_name",
                 minimal,
                 {{"PARLEY_CLUSTER_PEER_REGIONS", "a:1"}},
                 "'a:1' must be name=host:port"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Settings, PeerRegionsListEachRegionsEndpoints) {
  auto s =
      parse(minimal, "t.yaml",
            {{"PARLEY_NODE_REGION", "us"},
             {"PARLEY_CLUSTER_PEER_REGIONS", " eu = 10.0.1.11:7946, 10.0.1.12:7947 ; ap=h:1;"}});
  ASSERT_TRUE(s.ok()) << s.err().message;
  auto peers = parse_peer_regions(s->cluster.peer_regions, s->node.region);
  ASSERT_TRUE(peers.ok()) << peers.err().message;
  ASSERT_EQ(peers->size(), 2u);
  EXPECT_EQ((*peers)[0].name, "eu");
  ASSERT_EQ((*peers)[0].endpoints.size(), 2u);
  EXPECT_EQ((*peers)[0].endpoints[0], (std::pair<std::string, uint16_t>{"10.0.1.11", 7946}));
  EXPECT_EQ((*peers)[0].endpoints[1], (std::pair<std::string, uint16_t>{"10.0.1.12", 7947}));
  EXPECT_EQ((*peers)[1].name, "ap");
  EXPECT_EQ((*peers)[1].endpoints[0], (std::pair<std::string, uint16_t>{"h", 1}));
  auto none = parse_peer_regions("", "us");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(Settings, LoadReportsAMissingFile) {
  auto s = load("/nonexistent/parley.yaml", {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.err().message.find("/nonexistent/parley.yaml: cannot read"), std::string::npos);
}

TEST(Settings, ShippedLocalConfigIsValid) {
  auto s = load(std::string(PARLEY_SOURCE_DIR) + "/config/local.yaml", {});
  ASSERT_TRUE(s.ok()) << s.err().message;
  EXPECT_EQ(s->node.name, "local-1");
  EXPECT_EQ(s->actions.egress_allow, (std::vector<std::string>{"127.0.0.1:8081"}))
      << "the demo order API of scripts/run";
}

TEST(Settings, DescribeListsEveryKey) {
  auto d = describe();
  for (const char* key :
       {"http.port", "redis.url", "postgres.url", "log.format", "actors.scheduler_threads",
        "actions.egress_allow", "actions.ca_file", "actions.max_response_bytes"})
    EXPECT_NE(d.find(key), std::string::npos) << key;
}

TEST(Log, JsonLinesEscapeAndCarryFields) {
  auto line = log::format_line(log::format::json, log::level::warn, "x",
                               {{"msg", "a \"b\"\n"}, {"id", "7"}});
  EXPECT_EQ(line, R"("level":"warn","event":"x","msg":"a \"b\"\n","id":"7")");
}

TEST(Log, LogfmtQuotesOnlyWhenNeeded) {
  auto line = log::format_line(log::format::logfmt, log::level::info, "x",
                               {{"a", "plain"}, {"b", "two words"}});
  EXPECT_EQ(line, R"(level=info event=x a=plain b="two words")");
}

}  // namespace
}  // namespace parley::settings
