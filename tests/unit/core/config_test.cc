#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "cdr/core/config.h"

namespace cdr {
namespace {

daemon_config ok(std::string_view text, const std::vector<std::string>& sets = {}) {
  auto r = parse_config(text, "test.toml", sets);
  if (auto* e = std::get_if<config_error>(&r)) ADD_FAILURE() << e->to_string();
  return std::get<daemon_config>(std::move(r));
}

config_error refused(std::string_view text, const std::vector<std::string>& sets = {}) {
  auto r = parse_config(text, "test.toml", sets);
  EXPECT_TRUE(std::holds_alternative<config_error>(r)) << "accepted:\n" << text;
  return std::holds_alternative<config_error>(r) ? std::get<config_error>(r) : config_error{};
}

TEST(config, defaults_are_the_production_defaults) {
  const auto c = ok("");
  EXPECT_EQ(c.kafka.brokers, "localhost:9092");
  EXPECT_FALSE(c.kafka.embedded());
  EXPECT_EQ(c.kafka.group_id, "cdr-retention");
  EXPECT_EQ(c.kafka.topic_cdr, "cdr");
  EXPECT_EQ(c.kafka.topic_usage, "usage");
  EXPECT_EQ(c.kafka.topic_dead_letter, "cdr-retention-dlq");
  EXPECT_EQ(c.kafka.topic_control, "cdr-retention-control");
  EXPECT_EQ(c.kafka.topic_replies, "cdr-retention-replies");
  EXPECT_EQ(c.kafka.topic_handover, "cdr-retention-handover");
  EXPECT_TRUE(c.kafka.fleet());
  EXPECT_EQ(c.kafka.group_instance_id, "");
  EXPECT_EQ(c.kafka.control_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.storage.path, "/var/lib/cdr-retention/data");
  EXPECT_EQ(c.storage.checkpoint_dir, "/var/lib/cdr-retention/checkpoints");
  EXPECT_EQ(c.storage.compression, compression_kind::lz4);
  EXPECT_EQ(c.storage.block_cache_bytes, 64u << 20);
  EXPECT_EQ(c.storage.keystore_path, "/var/lib/cdr-retention-keys/keystore.json");
  EXPECT_EQ(c.storage.master_key_file, "/etc/cdr-retention/master.key");
  EXPECT_EQ(c.admin.socket, "/run/cdr-retention/admin.sock");
  EXPECT_EQ(c.admin.idle_timeout, std::chrono::seconds(60));
  EXPECT_EQ(c.metrics.host, "127.0.0.1");
  EXPECT_EQ(c.metrics.port, 9745);
  EXPECT_EQ(c.events.max_bytes, 65536u);
  EXPECT_EQ(c.events.future_skew, std::chrono::hours(24));
  EXPECT_EQ(c.retention.defaults(), class_rules{});
}

// erasure.purge_after's range starts at 0s (purge at the end of each erasure).
TEST(config, purge_after_takes_zero) {
  const auto r = parse_config(default_config_toml, "defaults", {"erasure.purge_after=\"0s\""});
  ASSERT_TRUE(std::holds_alternative<daemon_config>(r)) << std::get<config_error>(r).to_string();
  EXPECT_EQ(std::get<daemon_config>(r).erasure.purge_after, microseconds{0});
  EXPECT_EQ(std::get<daemon_config>(parse_config(default_config_toml, "defaults", {})).erasure.purge_after,
            std::chrono::hours(24));
}

TEST(config, the_documented_example_is_exactly_the_defaults) {
  std::ifstream f(std::string(CDR_SOURCE_DIR) + "/config/cdr-retention.toml");
  ASSERT_TRUE(f) << "config/cdr-retention.toml";
  std::stringstream text;
  text << f.rdbuf();
  EXPECT_EQ(ok(text.str()).effective_json, ok("").effective_json);
}

TEST(config, the_demo_config_is_valid_and_embedded) {
  std::ifstream f(std::string(CDR_SOURCE_DIR) + "/config/demo.toml");
  std::stringstream text;
  text << f.rdbuf();
  EXPECT_TRUE(ok(text.str()).kafka.embedded());
}

TEST(config, set_overrides_the_file_in_order) {
  const auto c = ok("[kafka]\nbrokers = \"a:1\"\n[storage]\npath = \"/from/file\"\n",
                    {"kafka.brokers=b:2", "storage.path=/from/flag", "storage.compression=\"none\"",
                     "admin.max_connections=3", "kafka.topics.cdr=cdr-eu", "storage.path=/last/wins",
                     "kafka.properties.\"security.protocol\"=SASL_SSL", "metrics.listen=0.0.0.0:0"});
  EXPECT_EQ(c.kafka.brokers, "b:2");
  EXPECT_EQ(c.storage.path, "/last/wins");
  EXPECT_EQ(c.storage.compression, compression_kind::none);
  EXPECT_EQ(c.admin.max_connections, 3u);
  EXPECT_EQ(c.kafka.topic_cdr, "cdr-eu");
  EXPECT_EQ(c.kafka.properties.at("security.protocol"), "SASL_SSL");
  EXPECT_EQ(c.metrics.port, 0);
}

TEST(config, secrets_never_show_in_the_effective_config) {
  const auto c =
      ok("[kafka.properties]\n\"sasl.password\" = \"hunter2\"\n\"ssl.key.password\" = \"s3cret\"\n"
         "\"sasl.username\" = \"svc\"\n\"socket.timeout.ms\" = 5000\n");
  EXPECT_EQ(c.kafka.properties.at("sasl.password"), "hunter2");
  EXPECT_EQ(c.kafka.properties.at("socket.timeout.ms"), "5000");
  EXPECT_EQ(c.effective_json.find("hunter2"), std::string::npos);
  EXPECT_EQ(c.effective_json.find("s3cret"), std::string::npos);
  EXPECT_NE(c.effective_json.find("<redacted>"), std::string::npos);
  EXPECT_NE(c.effective_json.find("svc"), std::string::npos);
}

// An environment and files of a test's own.
class fake_secrets final : public secret_reader {
 public:
  std::map<std::string, std::string> vars;
  std::map<std::string, std::string> files;
  std::optional<std::string> env(const std::string& name) const override {
    const auto at = vars.find(name);
    return at == vars.end() ? std::nullopt : std::optional<std::string>(at->second);
  }
  result<std::string> file(const std::string& path) const override {
    const auto at = files.find(path);
    if (at == files.end()) return failure{"No such file or directory"};
    return at->second;
  }
};

TEST(config, secret_values_come_from_the_environment_or_a_file_and_show_only_as_references) {
  fake_secrets secrets;
  secrets.vars = {{"KAFKA_PASSWORD", "hunter2"}, {"CREDENTIALS_DIRECTORY", "/run/credentials/cdr-retention.service"}};
  secrets.files = {{"/run/credentials/cdr-retention.service/ssl-key-password", "s3cret\n"},
                   {"/etc/cdr-retention/oauth-secret", "t0ken\r\n"}};
  const auto text = std::string(
      "[kafka.properties]\n"
      "\"sasl.password\" = \"${KAFKA_PASSWORD}\"\n"
      "\"ssl.key.password\" = \"@${CREDENTIALS_DIRECTORY}/ssl-key-password\"\n"
      "\"sasl.oauthbearer.client.secret\" = \"@/etc/cdr-retention/oauth-secret\"\n"
      "\"sasl.username\" = \"@@svc\"\n");
  auto r = parse_config(text, "test.toml", {}, &secrets);
  ASSERT_TRUE(std::holds_alternative<daemon_config>(r)) << std::get<config_error>(r).to_string();
  const auto& c = std::get<daemon_config>(r);
  EXPECT_EQ(c.kafka.properties.at("sasl.password"), "hunter2");
  EXPECT_EQ(c.kafka.properties.at("ssl.key.password"), "s3cret");
  EXPECT_EQ(c.kafka.properties.at("sasl.oauthbearer.client.secret"), "t0ken");
  EXPECT_EQ(c.kafka.properties.at("sasl.username"), "@svc");
  for (const auto* secret : {"hunter2", "s3cret", "t0ken"}) {
    EXPECT_EQ(c.effective_json.find(secret), std::string::npos) << secret;
  }
  EXPECT_NE(c.effective_json.find("${KAFKA_PASSWORD}"), std::string::npos) << c.effective_json;
  EXPECT_NE(c.effective_json.find("@/etc/cdr-retention/oauth-secret"), std::string::npos) << c.effective_json;
}

TEST(config, an_unresolvable_secret_reference_is_refused_naming_the_key) {
  fake_secrets secrets;
  secrets.files = {{"/empty", "\n"}};
  const auto refused_with = [&](const std::string& value, const secret_reader* reader) {
    auto r = parse_config("[kafka.properties]\n\"sasl.password\" = \"" + value + "\"\n", "test.toml", {}, reader);
    EXPECT_TRUE(std::holds_alternative<config_error>(r)) << value;
    if (!std::holds_alternative<config_error>(r)) return std::string();
    const auto& e = std::get<config_error>(r);
    EXPECT_EQ(e.key, "kafka.properties.sasl.password") << value;
    EXPECT_EQ(e.line, 2u) << value;
    return e.message;
  };
  EXPECT_EQ(refused_with("${NOT_SET}", &secrets), "environment variable NOT_SET is not set");
  EXPECT_EQ(refused_with("${1BAD}", &secrets).rfind("${...} must name an environment variable", 0), 0u);
  EXPECT_EQ(refused_with("${UNCLOSED", &secrets).rfind("${...} must name an environment variable", 0), 0u);
  EXPECT_EQ(refused_with("@/missing", &secrets), "cannot read /missing: No such file or directory");
  EXPECT_EQ(refused_with("@${NOT_SET}/x", &secrets), "environment variable NOT_SET is not set");
  EXPECT_EQ(refused_with("@/empty", &secrets), "/empty is empty");
  EXPECT_EQ(refused_with("@", &secrets), "@ must be followed by a file name");
  EXPECT_EQ(refused_with("${KAFKA_PASSWORD}", nullptr), "a ${NAME} or @FILE reference cannot be resolved here");
}

TEST(config, overrides_become_classes) {
  const auto c = ok(R"(
[[retention.overrides]]
id = 3
name = "kr"
countries = ["kr"]
metadata = { period = "5 years", anchor = "year_end" }

[[retention.overrides]]
id = 4
name = "acme"
customers = ["acme-1"]
identifiers = { period = "6 months", anchor = "month_end" }
)");
  EXPECT_EQ(c.retention.classify("x", "KR"), 3);
  EXPECT_EQ(c.retention.classify("acme-1", "KR"), 4);
  EXPECT_EQ(c.retention.rules(3).metadata, (retention_rule{60, anchor::year_end}));
  EXPECT_EQ(c.retention.rules(3).identifiers, class_rules{}.identifiers);
  EXPECT_EQ(c.retention.rules(4).identifiers, (retention_rule{6, anchor::month_end}));
}

struct invalid_case {
  const char* name;
  const char* text;
  const char* key;
  std::uint32_t line;
  const char* message_part;
};

void PrintTo(const invalid_case& c, std::ostream* os) { *os << c.name; }

class invalid_config : public ::testing::TestWithParam<invalid_case> {};

TEST_P(invalid_config, is_refused_with_file_line_and_key) {
  const auto& c = GetParam();
  const auto e = refused(c.text);
  EXPECT_EQ(e.file, "test.toml");
  EXPECT_EQ(e.key, c.key) << e.to_string();
  EXPECT_EQ(e.line, c.line) << e.to_string();
  EXPECT_NE(e.message.find(c.message_part), std::string::npos) << e.to_string();
  EXPECT_NE(e.to_string().find(std::string("test.toml:") + std::to_string(c.line)), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    kinds, invalid_config,
    ::testing::Values(
        invalid_case{"syntax", "[kafka]\nbrokers = \n", "", 2, ""},
        invalid_case{"unknown_section", "[kafak]\nbrokers = \"x\"\n", "kafak", 1, "unknown key"},
        invalid_case{"unknown_key", "[storage]\npath = \"/x\"\npaht = \"/y\"\n", "storage.paht", 3, "unknown key"},
        invalid_case{"wrong_type", "[kafka]\n\nbrokers = 9092\n", "kafka.brokers", 3, "expected a string"},
        invalid_case{"table_for_value", "[kafka]\nbrokers = { a = 1 }\n", "kafka.brokers", 2, "expected a string"},
        invalid_case{"empty_string", "[kafka]\ngroup_id = \"\"\n", "kafka.group_id", 2, "must not be empty"},
        invalid_case{"same_topics", "[kafka.topics]\ncdr = \"x\"\nusage = \"x\"\n", "kafka.topics.usage", 3,
                     "must differ"},
        invalid_case{"dlq_is_input", "[kafka.topics]\ndead_letter = \"cdr\"\n", "kafka.topics.dead_letter", 2,
                     "must differ"},
        invalid_case{"control_is_input", "[kafka.topics]\ncontrol = \"usage\"\n", "kafka.topics.control", 2,
                     "must differ from kafka.topics.usage"},
        invalid_case{"control_without_replies", "[kafka.topics]\ncontrol = \"\"\n", "kafka.topics.control", 2,
                     "set kafka.topics.replies empty too"},
        invalid_case{"replies_is_control", "[kafka.topics]\nreplies = \"cdr-retention-control\"\n",
                     "kafka.topics.replies", 2, "must differ from kafka.topics.control"},
        invalid_case{"handover_is_replies", "[kafka.topics]\nhandover = \"cdr-retention-replies\"\n",
                     "kafka.topics.handover", 2, "must differ from kafka.topics.control and kafka.topics.replies"},
        invalid_case{"handover_without_fleet", "[kafka.topics]\ncontrol = \"\"\nreplies = \"\"\nhandover = \"h\"\n",
                     "kafka.topics.handover", 4, "must be set exactly when kafka.topics.control is"},
        invalid_case{"bad_instance_id", "[kafka]\ngroup_instance_id = \"pod 0\"\n", "kafka.group_instance_id", 2,
                     "at most 249"},
        invalid_case{"group_instance_property", "[kafka.properties]\n\"group.instance.id\" = \"x\"\n",
                     "kafka.properties.group.instance.id", 2, "kafka.group_instance_id"},
        invalid_case{"out_of_range", "[admin]\nmax_connections = 0\n", "admin.max_connections", 2,
                     "between 1 and 4096"},
        invalid_case{"bad_enum", "[storage]\ncompression = \"zstd\"\n", "storage.compression", 2,
                     "\"lz4\" or \"none\""},
        invalid_case{"keystore_in_data", "[storage]\npath = \"/srv/cdr\"\nkeystore_path = \"/srv/cdr/./keys/k.json\"\n",
                     "storage.keystore_path", 3, "outside storage.path"},
        invalid_case{"checkpoints_in_data", "[storage]\npath = \"/srv/cdr\"\ncheckpoint_dir = \"/srv/cdr/cp\"\n",
                     "storage.checkpoint_dir", 3, "outside storage.path"},
        invalid_case{"keystore_is_data", "[storage]\npath = \"data/\"\nkeystore_path = \"data\"\n",
                     "storage.keystore_path", 3, "outside storage.path"},
        invalid_case{"bad_duration", "[admin]\nidle_timeout = \"1 minute\"\n", "admin.idle_timeout", 2, "duration"},
        invalid_case{"bad_listen", "[metrics]\nlisten = \"9745\"\n", "metrics.listen", 2, "host:port"},
        invalid_case{"bad_port", "[metrics]\nlisten = \"127.0.0.1:99999\"\n", "metrics.listen", 2, "port"},
        invalid_case{"bad_level", "[log]\nlevel = \"verbose\"\n", "log.level", 2, "one of"},
        invalid_case{"long_socket",
                     "[admin]\nsocket = "
                     "\"/tmp/"
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "aaaaaaaaaaa.sock\"\n",
                     "admin.socket", 2, "108"},
        invalid_case{"required_metadata", "[events]\nmetadata_fields = [\"type\", \"id\"]\n", "events.metadata_fields",
                     2, "customer_id"},
        invalid_case{"required_usage_field", "[events]\nusage_metadata_fields = [\"type\", \"id\", \"ip\"]\n",
                     "events.usage_metadata_fields", 2, "customer_id"},
        invalid_case{"one_ms_jitter_cannot_be_zero", "[sweep]\njitter = \"0s\"\n", "sweep.jitter", 2, "duration"},
        invalid_case{"purge_after_too_long", "[erasure]\npurge_after = \"31d\"\n", "erasure.purge_after", 2, "30d"},
        invalid_case{"bad_period", "[retention.identifiers]\nperiod = \"12 weeks\"\n", "retention.identifiers.period",
                     2, "months"},
        invalid_case{"bad_anchor", "[retention.metadata]\nanchor = \"decade_start\"\n", "retention.metadata.anchor", 2,
                     "month_start"},
        invalid_case{"property_array", "[kafka.properties]\n\"x\" = [1]\n", "kafka.properties.x", 2,
                     "strings, numbers or booleans"},
        invalid_case{"property_reserved", "[kafka.properties]\n\"enable.auto.commit\" = true\n",
                     "kafka.properties.enable.auto.commit", 2, "protected: offsets are committed by the daemon"},
        invalid_case{"property_acks", "[kafka.properties]\nacks = \"1\"\n", "kafka.properties.acks", 2,
                     "protected: deletion events and dead-letter copies need"},
        invalid_case{"property_idempotence", "[kafka.properties]\n\"enable.idempotence\" = false\n",
                     "kafka.properties.enable.idempotence", 2, "must not write a retried message twice"},
        invalid_case{"property_offset_reset", "[kafka.properties]\n\"auto.offset.reset\" = \"latest\"\n",
                     "kafka.properties.auto.offset.reset", 2, "not skipped silently"},
        invalid_case{"property_offset_store", "[kafka.properties]\n\"enable.auto.offset.store\" = true\n",
                     "kafka.properties.enable.auto.offset.store", 2, "protected"},
        invalid_case{"property_isolation", "[kafka.properties]\n\"isolation.level\" = \"read_uncommitted\"\n",
                     "kafka.properties.isolation.level", 2, "read_committed"},
        invalid_case{"period_5_digits", "[retention.identifiers]\nperiod = \"99999 years\"\n",
                     "retention.identifiers.period", 2, "at most 1000 years"},
        invalid_case{"period_over_cap", "[retention.usage]\nperiod = \"12001 months\"\n", "retention.usage.period", 2,
                     "at most 1000 years"},
        invalid_case{"override_period_over_cap",
                     "[[retention.overrides]]\nid = 1\nname = \"a\"\ncountries = [\"KR\"]\nmetadata = { period = "
                     "\"1001 years\", anchor = \"year_start\" }\n",
                     "retention.overrides[0].metadata.period", 5, "at most 1000 years"},
        invalid_case{"future_skew_huge", "[events]\nfuture_skew = \"106751991d\"\n", "events.future_skew", 2,
                     "between 1s and 366d"},
        invalid_case{"future_skew_over", "[events]\nfuture_skew = \"367d\"\n", "events.future_skew", 2,
                     "between 1s and 366d"},
        invalid_case{"linger_huge", "[kafka]\nbatch_linger = \"2m\"\n", "kafka.batch_linger", 2, "between 1ms and 1m"},
        invalid_case{"shutdown_huge", "[kafka]\nshutdown_timeout = \"2h\"\n", "kafka.shutdown_timeout", 2,
                     "between 1s and 1h"},
        invalid_case{"interval_huge", "[sweep]\ninterval = \"32d\"\n", "sweep.interval", 2, "between 1s and 31d"},
        invalid_case{"interval_small", "[sweep]\ninterval = \"500ms\"\n", "sweep.interval", 2, "between 1s and 31d"},
        invalid_case{"idle_huge", "[admin]\nidle_timeout = \"2d\"\n", "admin.idle_timeout", 2, "between 1s and 1d"},
        invalid_case{"override_without_selector", "[[retention.overrides]]\nid = 1\nname = \"x\"\n",
                     "retention.overrides[0]", 1, "at least one"},
        invalid_case{"override_bad_id", "[[retention.overrides]]\nid = 0\nname = \"x\"\ncountries = [\"KR\"]\n",
                     "retention.overrides[0].id", 2, "between 1 and 65535"},
        invalid_case{"override_unknown_key", "[[retention.overrides]]\nid = 1\nname = \"x\"\ncountry = [\"KR\"]\n",
                     "retention.overrides[0].country", 4, "unknown key"},
        invalid_case{"override_bad_country", "[[retention.overrides]]\nid = 1\nname = \"x\"\ncountries = [\"KOR\"]\n",
                     "retention.overrides[0].countries", 4, "alpha-2"},
        invalid_case{"override_duplicate_id",
                     "[[retention.overrides]]\nid = 1\nname = \"a\"\ncountries = [\"KR\"]\n[[retention.overrides]]\nid "
                     "= 1\nname = \"b\"\ncountries = [\"DE\"]\n",
                     "retention.overrides[1].id", 6, "duplicate"},
        invalid_case{"override_country_twice",
                     "[[retention.overrides]]\nid = 1\nname = \"a\"\ncountries = [\"KR\"]\n[[retention.overrides]]\nid "
                     "= 2\nname = \"b\"\ncountries = [\"kr\"]\n",
                     "retention.overrides[1].countries", 8, "two overrides"},
        invalid_case{"override_bad_rule",
                     "[[retention.overrides]]\nid = 1\nname = \"a\"\ncountries = [\"KR\"]\nusage = { period = \"3 "
                     "decades\", anchor = \"month_start\" }\n",
                     "retention.overrides[0].usage.period", 5, "months"}),
    [](const auto& p) { return std::string(p.param.name); });

// Every bound holds exactly at its edge.
TEST(config, bounds_are_inclusive_at_their_edges) {
  const auto c =
      ok("[retention.metadata]\nperiod = \"1000 years\"\n[events]\nfuture_skew = \"366d\"\n"
         "[kafka]\nbatch_linger = \"1m\"\nshutdown_timeout = \"1h\"\n[sweep]\ninterval = \"31d\"\n"
         "[admin]\nidle_timeout = \"1d\"\n");
  EXPECT_EQ(c.retention.defaults().metadata.period_months, 12000);
  EXPECT_EQ(c.events.future_skew, std::chrono::days(366));
  // The longest period from the last supported month stays a valid month.
  const auto last = month::of(last_supported_year, 12);
  EXPECT_EQ(c.retention.deadline(retention_action::drop_metadata, last, 0), month::of(last_supported_year + 1000, 1));
  EXPECT_EQ(format_rfc3339(c.retention.deadline(retention_action::drop_metadata, last, 0).start()),
            "10999-01-01T00:00:00Z");
}

TEST(config, a_bad_set_names_the_flag_and_key) {
  auto e = refused("", {"storage.compresion=none"});
  EXPECT_EQ(e.key, "storage.compresion");
  EXPECT_EQ(e.file, "--set storage.compresion=none");
  e = refused("", {"admin.max_connections=lots"});
  EXPECT_EQ(e.key, "admin.max_connections");
  EXPECT_NE(e.message.find("expected an integer"), std::string::npos) << e.to_string();
  e = refused("", {"no-equals-sign"});
  EXPECT_NE(e.message.find("--set section.key=value"), std::string::npos);
}

}  // namespace
}  // namespace cdr
