#!/usr/bin/env bash
# The daemon beside its peers, same events, same run: db_bench fillseq (in
# bench_ingest_e2e) and PostgreSQL 15 with one partition per month.
#
#   cmake --preset release && cmake --build --preset release
#   benchmarks/peers.sh [N=2000000]
#
# 1. bench_ingest_e2e N: the daemon's end-to-end ingest and db_bench fillseq.
# 2. bench_sweep 1000000 1000000: strip and drop of a 1M-record month, and a
#    subject's erasure (logical commit and with its purge).
# 3. PostgreSQL 15 (Debian's package; installed when missing, as root), its
#    own server in a temporary directory, started and stopped here:
#    - JSON lines to rows inside the database: COPY into a jsonb staging
#      table, then INSERT ... SELECT into the month partitions;
#    - bare COPY of the same rows from CSV (no index), then the identifier
#      indexes an erasure needs;
#    - erase one subject (UPDATE of its identifiers, VACUUM FULL of the
#      partitions it was in), strip one month (UPDATE + VACUUM FULL), drop
#      one month (DROP TABLE of its partition).
# Prints one table of ratios. BUILD overrides build/release; KEEP=1 keeps the
# temporary directory; SWEEP_RECORDS (default 1000000) sizes bench_sweep's
# months. The events are bench_ingest_e2e's (seed 2025, N of
# them over the 30 days before 2025-03-14: two months of about N/2 each).
set -euo pipefail

n=${1:-2000000}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build/release}
pg=/usr/lib/postgresql/15/bin
for b in bench_ingest_e2e bench_sweep; do
  if [ ! -x "$build/benchmarks/$b" ]; then
    echo "peers: $build/benchmarks/$b is missing (cmake --build --preset release)" >&2
    exit 1
  fi
done
if [ ! -x "$pg/postgres" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "peers: PostgreSQL 15 is not installed; run as root to install postgresql-15" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15
fi
# PostgreSQL does not run as root: its files belong to the postgres user.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); fi

work=$(mktemp -d /tmp/cdr-peers.XXXXXX)
chmod 755 "$work"
stop_pg() {
  if [ -f "$work/pg/postmaster.pid" ]; then "${as_pg[@]}" "$pg/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null || true; fi
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "peers: kept $work"; fi
}
trap stop_pg EXIT

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }
field() { sed -n "$1" "$2" | head -n 1; }

echo "== daemon: bench_ingest_e2e $n"
"$build/benchmarks/bench_ingest_e2e" "$n" | tee "$work/ingest.txt"
daemon_rate=$(field 's/.* = \([0-9]*\) events\/s.*/\1/p' "$work/ingest.txt")
daemon_cpu=$(field 's/.* = \([0-9.]*\) us per event.*/\1/p' "$work/ingest.txt")
fillseq=$(field 's/^db_bench fillseq: \([0-9]*\) ops\/s/\1/p' "$work/ingest.txt")

sweep_n=${SWEEP_RECORDS:-1000000}
echo "== daemon: bench_sweep $sweep_n $sweep_n"
"$build/benchmarks/bench_sweep" "$sweep_n" "$sweep_n" | tee "$work/sweep.txt"
d_strip=$(field 's/^strip 1M .*records  \([0-9.]*\) s .*/\1/p' "$work/sweep.txt")
d_drop=$(field 's/^drop 1M .*records  \([0-9.]*\) s .*/\1/p' "$work/sweep.txt")
d_erase_total=$(field 's/^erasure latency: p50 \([0-9.]*\) ms.*/\1/p' "$work/sweep.txt")
d_erase_logical=$(field 's/.*logical commit p50 \([0-9.]*\) ms.*/\1/p' "$work/sweep.txt")

echo "== PostgreSQL 15: $n events"
"$build/benchmarks/bench_ingest_e2e" "$n" --dump "$work/events.jsonl"
chown -R postgres "$work" 2>/dev/null || true
"${as_pg[@]}" "$pg/initdb" -D "$work/pg" -A trust -U postgres >/dev/null
"${as_pg[@]}" "$pg/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w start \
  -o "-c listen_addresses='' -k $work -c shared_buffers=256MB -c max_wal_size=8GB -c maintenance_work_mem=256MB" \
  >/dev/null
# One transaction per call: VACUUM runs in a call of its own.
sql() { "${as_pg[@]}" "$pg/psql" -h "$work" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt -c "$1"; }

# One partition per month, the identifiers in columns of their own (what a
# strip clears), the rest of the event as jsonb.
sql "CREATE UNLOGGED TABLE staging (doc jsonb);
     CREATE TABLE events (kind text, id text, customer_id text, occurred_at timestamptz,
                          from_id text, to_id text, meta jsonb) PARTITION BY RANGE (occurred_at);
     CREATE TABLE events_2025_01 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2025-02-01');
     CREATE TABLE events_2025_02 PARTITION OF events FOR VALUES FROM ('2025-02-01') TO ('2025-03-01');
     CREATE TABLE events_2025_03 PARTITION OF events FOR VALUES FROM ('2025-03-01') TO ('2025-04-01');"

t=$(now)
sql "COPY staging (doc) FROM '$work/events.jsonl' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
     INSERT INTO events
       SELECT doc->>'type', doc->>'id', doc->>'customer_id', (doc->>'occurred_at')::timestamptz,
              doc->>'from', doc->>'to', doc - 'from' - 'to'
       FROM staging;"
pg_json=$(since "$t")
sql "DROP TABLE staging; COPY (SELECT * FROM events) TO '$work/events.csv' WITH (FORMAT csv); TRUNCATE events;"
sql "CHECKPOINT"

t=$(now)
sql "COPY events FROM '$work/events.csv' WITH (FORMAT csv);"
pg_copy=$(since "$t")
t=$(now)
sql "CREATE INDEX ON events (from_id); CREATE INDEX ON events (to_id); ANALYZE events;"
pg_index=$(since "$t")

rows=$(sql "SELECT count(*) FROM events;")
# The end user (a `to`) with the most records.
subject=$(sql "SELECT to_id FROM events WHERE to_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1;")
t=$(now)
erased=$(sql "WITH a AS (UPDATE events SET from_id = NULL WHERE from_id = '$subject' RETURNING 1),
                   b AS (UPDATE events SET to_id = NULL WHERE to_id = '$subject' RETURNING 1)
              SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b);")
pg_erase_logical=$(since "$t")
sql "VACUUM FULL events_2025_02"
sql "VACUUM FULL events_2025_03"
pg_erase_total=$(since "$t")

strip_rows=$(sql "SELECT count(*) FROM events_2025_02;")
t=$(now)
sql "UPDATE events_2025_02 SET from_id = NULL, to_id = NULL"
sql "VACUUM FULL events_2025_02"
pg_strip=$(since "$t")
drop_rows=$(sql "SELECT count(*) FROM events_2025_03;")
t=$(now)
sql "DROP TABLE events_2025_03;"
pg_drop=$(since "$t")

rate() { echo "$1 / $2" | bc -l; }
pg_json_rate=$(rate "$rows" "$pg_json")
pg_copy_rate=$(rate "$rows" "$pg_copy")
echo
echo "== the daemon beside its peers ($n events; PostgreSQL: $rows rows, subject $subject: $erased identifiers;"
echo "   month stripped: $strip_rows rows, month dropped: $drop_rows rows; the daemon's months: $sweep_n records)"
printf '%-46s %14s %14s %9s\n' "figure" "daemon" "peer" "ratio"
row() { printf '%-46s %14.1f %14.1f %9.2f\n' "$1" "$2" "$3" "$(echo "$4" | bc -l)"; }
row "ingest events/s vs db_bench fillseq ops/s" "$daemon_rate" "$fillseq" "$daemon_rate / $fillseq"
row "ingest events/s vs PostgreSQL JSON to rows" "$daemon_rate" "$pg_json_rate" "$daemon_rate / $pg_json_rate"
row "ingest events/s vs PostgreSQL bare COPY" "$daemon_rate" "$pg_copy_rate" "$daemon_rate / $pg_copy_rate"
row "strip a month, s (peer / daemon)" "$d_strip" "$pg_strip" "$pg_strip / $d_strip"
row "drop a month, s (peer / daemon)" "$d_drop" "$pg_drop" "$pg_drop / $d_drop"
row "erase a subject, logical ms (peer / daemon)" "$d_erase_logical" "$(echo "1000 * $pg_erase_logical" | bc -l)" \
  "1000 * $pg_erase_logical / $d_erase_logical"
echo "daemon CPU per event: $daemon_cpu us; PostgreSQL identifier indexes built after COPY in $(printf '%.1f' "$pg_index") s"
echo "erasure from disk: PostgreSQL's UPDATE + VACUUM FULL of the partitions touched $(printf '%.1f' "$pg_erase_total") s;"
echo "  the daemon's erasure with its purge (p50) $d_erase_total ms, when erasure.purge_after batches no purge into it"
echo "  (then bench_erasure measures the batched purge pass)"
