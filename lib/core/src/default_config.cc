// Built-in defaults. config/cdr-retention.toml documents every key and is
// tested to yield exactly this configuration.
#include "cdr/core/config.h"

namespace cdr {

const std::string_view default_config_toml = R"toml(
[kafka]
brokers = "localhost:9092"
group_id = "cdr-retention"
client_id = "cdr-retentiond"
embedded_partitions = 4
batch_max_records = 2000
batch_linger = "50ms"
shutdown_timeout = "30s"
group_instance_id = ""
control_timeout = "30s"
fleet_key_file = ""
fleet_accept_key_files = []

[kafka.topics]
cdr = "cdr"
usage = "usage"
dead_letter = "cdr-retention-dlq"
deletion_events = "cdr-retention-events"
control = "cdr-retention-control"
replies = "cdr-retention-replies"
handover = "cdr-retention-handover"

[kafka.properties]

[storage]
path = "/var/lib/cdr-retention/data"
checkpoint_dir = ""
compression = "lz4"
block_cache_mb = 64
subject_key_file = "/etc/cdr-retention/subject.key"
keystore_path = "/var/lib/cdr-retention-keys/keystore.json"
master_key_file = "/etc/cdr-retention/master.key"
wal_sync_interval = "100ms"
wal_sync_bytes = 8388608
max_seals_per_key = 2147483648

[sweep]
interval = "1h"
jitter = "5m"
max_clock_jump = "1d"

[erasure]
purge_after = "24h"

[admin]
socket = "/run/cdr-retention/admin.sock"
socket_group = ""
operator_group = "cdr-retention-operators"
viewer_group = "cdr-retention-viewers"
max_connections = 16
max_request_bytes = 65536
idle_timeout = "60s"

[metrics]
listen = "127.0.0.1:9745"

[log]
level = "info"
format = "auto"

[demo]
enabled = false
events_per_second = 200.0
seed = 1
late_fraction = 0.01
malformed_fraction = 0.01

[events]
max_bytes = 65536
future_skew = "24h"
default_region = ""
metadata_fields = ["type", "id", "customer_id", "occurred_at", "channel", "direction", "status", "duration_ms", "parts", "route", "price"]
usage_metadata_fields = ["type", "id", "customer_id", "occurred_at", "action"]

[retention.identifiers]
period = "12 months"
anchor = "month_end"

[retention.metadata]
period = "10 years"
anchor = "year_start"

[retention.usage]
period = "36 months"
anchor = "month_start"
)toml";

}  // namespace cdr
