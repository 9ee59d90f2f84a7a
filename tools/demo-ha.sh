#!/usr/bin/env bash
# tools/demo-ha.sh: what `make demo-ha` runs (issue 12, item 3).
#
# A failover drill of mq on pg_auto_failover (Debian's packages
# postgresql-15-auto-failover and pg-auto-failover-cli), all on this machine
# in a temporary directory:
#   - a monitor and two Postgres nodes, mq preloaded on both, managed by
#     pg_autoctl (run as an unprivileged user: root: postgres, or mqtest);
#     pg_auto_failover makes the standby synchronous, so a commit returns
#     only once the standby has its WAL;
#   - a producer (psql, one autocommit mq.send at a time) that logs every
#     send whose COMMIT returned, and a consumer (psql: blocking receive of
#     up to 10, then ack) that logs every delivery; both connect with a
#     multi-host connection string (host=DIR,DIR port=P1,P2
#     target_session_attrs=read-write) and reconnect when the connection
#     is lost;
#   - `pg_autoctl perform failover` while they run; the producer goes on
#     for a few seconds on the new primary, then stops; the consumer drains
#     the queue (leases held at the switch expire and are redelivered);
#   - it prints sent, received, lost (must be 0), duplicated (redeliveries:
#     at-least-once), the failover time, and mq.metrics read on the replica;
#     then stops everything and removes the directory.
# Exit status 0 only if nothing was lost.
#
# Installs what is missing first (tools/deps.sh for building mq, apt-get for
# pg_auto_failover) when run as root; otherwise prints the command to run.
#
#   MQ_HA_PORT      first port to try (default 55431; three are used)
#   MQ_HA_TRAFFIC   seconds of traffic before and after the failover (default 5)
#   MQ_HA_KEEP=1    keep the directory (logs) instead of removing it

set -u -o pipefail

MQ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$MQ_ROOT/tools/deps.sh"
. "$MQ_ROOT/tools/common.sh"

TRAFFIC=${MQ_HA_TRAFFIC:-5}
DIR=
PGIDS=()        # process groups of the pg_autoctl services and the clients

die() { echo "demo-ha: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ -n "$DIR" ] && [ -d "$DIR" ]; then
        mq_section "stopping and removing everything"
        local node
        for node in node2 node1 monitor; do
            [ -d "$DIR/$node" ] && "${AS[@]}" timeout 30 pg_autoctl stop --pgdata "$DIR/$node" \
                >/dev/null 2>&1 </dev/null
        done
        local pg
        for _ in $(seq 1 50); do
            local alive=0
            for pg in "${PGIDS[@]}"; do kill -0 -- "-$pg" 2>/dev/null && alive=1; done
            [ "$alive" -eq 0 ] && break
            sleep 0.2
        done
        for pg in "${PGIDS[@]}"; do kill -KILL -- "-$pg" 2>/dev/null; done
        mq_stop_postgres_under "$DIR"
        if [ "${MQ_HA_KEEP:-0}" = 1 ]; then
            echo "kept $DIR"
        else
            rm -rf "$DIR"
            echo "removed $DIR"
        fi
    fi
    if [ "$rc" -eq 0 ]; then echo "demo-ha: done"; else echo "demo-ha: FAILED (exit status $rc)" >&2; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "demo-ha: interrupted" >&2; exit 130' INT TERM HUP

# --- dependencies ------------------------------------------------------------

mq_section "dependencies"
mq_deps build || exit 1

# The monitor needs the pgautofailover extension (and btree_gist) in the
# PostgreSQL it runs on: the one of PG_CONFIG if it has it, else Debian's.
monitor_bindir() {
    local bindir share lib
    for bindir in "$PG_BINDIR" "/usr/lib/postgresql/$MQ_PG_MAJOR/bin"; do
        [ -x "$bindir/pg_ctl" ] || continue
        if [ "$bindir" = "$PG_BINDIR" ]; then
            share=$("$PG_CONFIG" --sharedir); lib=$("$PG_CONFIG" --pkglibdir)
        else
            share=/usr/share/postgresql/$MQ_PG_MAJOR; lib=/usr/lib/postgresql/$MQ_PG_MAJOR/lib
        fi
        if [ -e "$lib/pgautofailover.so" ] && [ -e "$share/extension/pgautofailover.control" ] &&
           [ -e "$share/extension/btree_gist.control" ]; then
            echo "$bindir"
            return 0
        fi
    done
    return 1
}
missing=()
command -v pg_autoctl >/dev/null 2>&1 || missing+=(pg-auto-failover-cli)
monitor_bindir >/dev/null || missing+=("postgresql-$MQ_PG_MAJOR-auto-failover")
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$MQ_IS_ROOT" -ne 1 ]; then
        echo "demo-ha: missing packages: ${missing[*]}; as a user with sudo rights, run:" >&2
        echo "sudo apt-get install -y ${missing[*]}"
        exit 1
    fi
    echo "demo-ha: installing ${missing[*]}"
    apt_opts=(-o DPkg::Lock::Timeout=300 -o APT::Get::Assume-Yes=true)
    DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q "${missing[@]}" ||
        die "apt-get failed"
fi
command -v pg_autoctl >/dev/null 2>&1 || die "pg_autoctl not found after installing pg-auto-failover-cli"
MONITOR_BINDIR=$(monitor_bindir) || die "no PostgreSQL $MQ_PG_MAJOR with the pgautofailover extension"
echo "pg_autoctl: $(pg_autoctl version 2>/dev/null | head -n 1)"
echo "monitor runs $MONITOR_BINDIR/postgres; the nodes run $PG_BINDIR/postgres with mq"

mq_build || die "build failed"
mq_install || die "install failed"
mq_pick_user || die "could not get an unprivileged user"

DIR=$(mktemp -d /tmp/mq-ha-XXXXXX) || die "mktemp failed"
mkdir -p "$DIR/run"
mq_set_as "$DIR" || die "could not hand $DIR to $MQ_USER"
chmod 755 "$DIR"
# pg_autoctl keeps its configuration and state under XDG_CONFIG_HOME and
# XDG_DATA_HOME ($HOME/.config, $HOME/.local/share) and its pid files under
# XDG_RUNTIME_DIR: all inside $DIR.  PGHOST: it reaches its local Postgres
# through the socket directory.
AS=("${MQ_AS[@]}" XDG_RUNTIME_DIR="$DIR/run" PGHOST="$DIR")
echo "working in $DIR as $MQ_USER"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORTS=()
p=${MQ_HA_PORT:-55431}
while [ "${#PORTS[@]}" -lt 3 ]; do
    port_in_use "$p" || PORTS+=("$p")
    p=$((p + 1))
done
PM=${PORTS[0]}; P1=${PORTS[1]}; P2=${PORTS[2]}
declare -A PORT_OF=([node1]=$P1 [node2]=$P2)

# psql on one node (through the socket in $DIR), and on the primary
# (multi-host connection string: whichever node accepts writes)
CONN="host=$DIR,$DIR port=$P1,$P2 dbname=postgres user=postgres target_session_attrs=read-write connect_timeout=2"
on_node() { local node=$1; shift; "${AS[@]}" psql -X -At -h "$DIR" -p "${PORT_OF[$node]}" -U postgres -d postgres "$@" </dev/null; }
on_primary() { "${AS[@]}" psql -X -At -d "$CONN" "$@" </dev/null; }
on_monitor() { "${AS[@]}" psql -X -At -h "$DIR" -p "$PM" -U postgres -d pg_auto_failover "$@" </dev/null; }

# start_bg NAME cmd...: run a command as MQ_USER in a process group of its
# own (setsid), output to $DIR/NAME.log
start_bg() {
    local name=$1; shift
    setsid "$@" >"$DIR/$name.log" 2>&1 </dev/null &
    PGIDS+=("$!")
    disown "$!"     # killed or not, never reported by this shell
}

# wait_until SECONDS CMD...: poll CMD every 0.2 s
wait_until() {
    local limit=$1; shift
    local end=$((SECONDS + limit))
    while [ "$SECONDS" -lt "$end" ]; do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}

# running PGID: whether the process group PGID still has a process
running() { kill -0 -- "-$1" 2>/dev/null; }

# settings of every Postgres instance, after pg_auto_failover's own
# include (a later line wins): sockets in $DIR, TCP on 127.0.0.1 only,
# small shared_buffers (pg_autoctl sizes them for a dedicated machine)
write_local_conf() {
    local data=$1 extra=$2
    "${AS[@]}" tee -a "$data/postgresql.conf" >/dev/null <<EOF

# added by tools/demo-ha.sh
unix_socket_directories = '$DIR'
listen_addresses = '127.0.0.1'
shared_buffers = '64MB'
effective_cache_size = '1GB'
maintenance_work_mem = '64MB'
$extra
EOF
}

# --- the monitor -------------------------------------------------------------

mq_section "pg_auto_failover monitor (port $PM)"
"${AS[@]}" "$MONITOR_BINDIR/initdb" -D "$DIR/monitor" -U postgres -A trust -E UTF8 --no-sync \
    >"$DIR/initdb-monitor.log" 2>&1 </dev/null || { cat "$DIR/initdb-monitor.log"; die "initdb failed"; }
# health checks every second: a dead primary is failed over in seconds
# (defaults: 5 s checks, 20 s before unhealthy, 30 s demote timeout)
write_local_conf "$DIR/monitor" "pgautofailover.health_check_period = 1000
pgautofailover.health_check_timeout = 1000
pgautofailover.health_check_max_retries = 1
pgautofailover.health_check_retry_delay = 500
pgautofailover.node_considered_unhealthy_timeout = 3000
pgautofailover.primary_demote_timeout = 3000"
"${AS[@]}" pg_autoctl create monitor --pgdata "$DIR/monitor" --pgport "$PM" --hostname 127.0.0.1 \
    --auth trust --no-ssl --pgctl "$MONITOR_BINDIR/pg_ctl" >"$DIR/create-monitor.log" 2>&1 </dev/null ||
    { tail -n 30 "$DIR/create-monitor.log"; die "pg_autoctl create monitor failed"; }
"${AS[@]}" pg_autoctl config set --pgdata "$DIR/monitor" postgresql.listen_addresses 127.0.0.1 >/dev/null </dev/null
start_bg monitor "${AS[@]}" pg_autoctl run --pgdata "$DIR/monitor"
wait_until 30 on_monitor -c "SELECT 1" >/dev/null 2>&1 || { tail -n 30 "$DIR/monitor.log"; die "the monitor did not start"; }
MONITOR_URI="postgres://autoctl_node@127.0.0.1:$PM/pg_auto_failover?sslmode=disable"
echo "monitor: $MONITOR_URI"

node_state() { on_monitor -c "SELECT reportedstate FROM pgautofailover.node WHERE nodename = '$1'" 2>/dev/null; }
state_is() { [ "$(node_state "$1")" = "$2" ]; }
both_ready() {
    local s1 s2
    s1=$(node_state node1); s2=$(node_state node2)
    [ "$s1:$s2" = "primary:secondary" ] || [ "$s1:$s2" = "secondary:primary" ]
}

declare -A NODE_PG
create_node() {
    local node=$1
    start_bg "$node" "${AS[@]}" pg_autoctl create postgres --pgdata "$DIR/$node" \
        --pgport "${PORT_OF[$node]}" --pghost "$DIR" --hostname 127.0.0.1 --listen 127.0.0.1 --name "$node" \
        --auth trust --no-ssl --pgctl "$PG_BINDIR/pg_ctl" --monitor "$MONITOR_URI" --run
    NODE_PG[$node]=${PGIDS[-1]}
}

# --- two nodes with mq -------------------------------------------------------

mq_section "node1 (port $P1): mq preloaded"
"${AS[@]}" "$PG_BINDIR/initdb" -D "$DIR/node1" -U postgres -A trust -E UTF8 --no-sync \
    >"$DIR/initdb-node1.log" 2>&1 </dev/null || { cat "$DIR/initdb-node1.log"; die "initdb failed"; }
# copied to node2 by its base backup.  pg_auto_failover's own file sets
# shared_preload_libraries = pg_stat_statements: keep it, and add mq.
write_local_conf "$DIR/node1" "shared_preload_libraries = 'pg_stat_statements,mq'
mq.worker_naptime = '200ms'"
create_node node1
node1_single() { state_is node1 single || { running "${PGIDS[-1]}" || return 0; return 1; }; }
wait_until 60 node1_single && state_is node1 single || { tail -n 30 "$DIR/node1.log"; die "node1 did not become single"; }
on_node node1 -v ON_ERROR_STOP=1 -q -c "CREATE EXTENSION mq" \
    -c "SELECT mq.create_queue('demo', visibility_timeout => '5 s', retry_delay => '100 ms')" \
    -c "CREATE TABLE demo_control (stop_producer boolean NOT NULL, stop_consumer boolean NOT NULL)" \
    -c "INSERT INTO demo_control VALUES (false, false)" -c "CHECKPOINT" >/dev/null ||
    die "could not set up mq on node1"
# (the CHECKPOINT leaves little for the one of node2's base backup to write)
echo "node1: CREATE EXTENSION mq; queue demo (lease 5 s)"

mq_section "node2 (port $P2): standby of node1"
create_node node2
both_ready_or_dead() { both_ready || { running "${PGIDS[-1]}" || return 0; return 1; }; }
wait_until 90 both_ready_or_dead && both_ready || { tail -n 30 "$DIR/node2.log"; die "node2 did not become secondary"; }
"${AS[@]}" pg_autoctl show state --pgdata "$DIR/monitor" </dev/null
primary_node() { local n; for n in node1 node2; do [ "$(on_node "$n" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && { echo "$n"; return 0; }; done; return 1; }
OLD_PRIMARY=$(primary_node) || die "no primary"
echo "primary: $OLD_PRIMARY, synchronous_standby_names = $(on_node "$OLD_PRIMARY" -c 'SHOW synchronous_standby_names')," \
     "synchronous_commit = $(on_node "$OLD_PRIMARY" -c 'SHOW synchronous_commit')"

# --- producer and consumer ---------------------------------------------------

# A loop of 100 x 100 x 100 iterations from three small files.  BODY sets
# the psql variable stop; \q ends only the script file it is in, so each
# level checks stop after each inclusion too, up to psql's own end.
write_loop() {
    local name=$1 body=$2 i
    local check='\if :stop
\q
\endif'
    { for i in $(seq 1 100); do printf '%s\n%s\n' "$body" "$check"; done; } >"$DIR/$name.3.sql"
    { for i in $(seq 1 100); do printf '\\ir %s\n%s\n' "$name.3.sql" "$check"; done; } >"$DIR/$name.2.sql"
    { for i in $(seq 1 100); do printf '\\ir %s\n%s\n' "$name.2.sql" "$check"; done; } >"$DIR/$name.sql"
}
# "S session n id time": printed once the send's COMMIT returned.  Each
# connection (session s) numbers its sends from 1: a send whose COMMIT did
# not return before the connection broke may or may not have committed,
# and its number is never reused.
write_loop producer "SELECT mq.send('demo', jsonb_build_object('s', :s, 'n', :n + 1)) AS id, :n + 1 AS n,
       extract(epoch FROM clock_timestamp()) AS t,
       (SELECT stop_producer FROM demo_control) AS stop \\gset
\\echo S :s :n :id :t"
# "R s:n,...": delivered (the receive's COMMIT returned); "A k": k acked
write_loop consumer "SELECT coalesce(string_agg(id::text, ','), '') AS ids,
       coalesce(string_agg((message->>'s') || ':' || (message->>'n'), ','), '') AS keys,
       (SELECT stop_consumer FROM demo_control) AS stop
  FROM mq.receive('demo', 10, wait => '1 s') \\gset
\\echo R :keys
SELECT 'A ' || mq.ack('demo', string_to_array(:'ids', ',')::bigint[]);"
chmod 644 "$DIR"/*.sql

# client NAME: runs NAME.sql through the multi-host connection string,
# again and again until psql ends by itself (\q: told to stop) or for at
# most 150 s; each new connection is a new session number.
cat >"$DIR/client.sh" <<'EOF'
#!/usr/bin/env bash
name=$1 dir=$2 conn=$3
s=0
end=$((SECONDS + 150))
while [ "$SECONDS" -lt "$end" ]; do
    s=$((s + 1))
    echo "C $s $(date +%s.%N)" >>"$dir/$name.out"
    psql -X -At -v ON_ERROR_STOP=1 -v s="$s" -v n=0 -v stop=f -d "$conn" -f "$dir/$name.sql" \
        >>"$dir/$name.out" 2>>"$dir/$name.err" </dev/null && exit 0
    sleep 0.1
done
exit 1
EOF
chmod 755 "$DIR/client.sh"

other() { [ "$1" = node1 ] && echo node2 || echo node1; }
gauges() {
    "$@" -c "SELECT concat_ws(' ', 'ready', ready, 'in_flight', in_flight, 'delayed', delayed,
                              'dead', dead, 'total_sent', total_sent, 'total_acked', total_acked)
               FROM mq.metrics('demo')" 2>&1
}
confirmed() { grep -c '^S ' "$DIR/producer.out" 2>/dev/null; }
worker_on() { [ -n "$(on_node "$1" -c 'SELECT pid FROM mq.workers' 2>/dev/null)" ]; }
# writable NODE: NODE accepts writes (what target_session_attrs=read-write
# checks; pg_auto_failover keeps a promoted node read-only until it is sure
# the old primary is gone)
writable() {
    [ "$(on_node "$1" -c "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'" 2>/dev/null)" = t ]
}
# after_failover N T_START HOW FROM: the new primary (once it accepts
# writes), its worker, and N's summary
FAILOVERS=()
after_failover() {
    local n=$1 t0=$2 how=$3 from=$4 t1 to
    to=$(other "$from")
    wait_until 60 writable "$to" || die "failover $n: $to does not accept writes after 60 s"
    t1=$(now)
    if wait_until 10 worker_on "$to"; then
        echo "the mq worker runs on $to"
    else
        echo "the mq worker does not run on $to after 10 s"
    fi
    echo "$from -> $to: $how, $(elapsed "$t0" "$t1") s until $to accepted writes"
    PRIMARY=$to
    sleep "$TRAFFIC"
    echo "sends committed so far: $(confirmed)"
    FAILOVERS+=("$n|$how|$from|$to|$t0|$t1")
}

mq_section "traffic: one producer, one consumer, ${TRAFFIC} s"
start_bg consumer-run "${AS[@]}" bash "$DIR/client.sh" consumer "$DIR" "$CONN"
CONSUMER_PG=${PGIDS[-1]}
start_bg producer-run "${AS[@]}" bash "$DIR/client.sh" producer "$DIR" "$CONN"
PRODUCER_PG=${PGIDS[-1]}
sleep "$TRAFFIC"
echo "sends committed so far: $(confirmed)"
PRIMARY=$OLD_PRIMARY
echo "monitoring the replica: mq.metrics('demo') on $(other "$PRIMARY"): $(gauges on_node "$(other "$PRIMARY")")"

# --- failover 1: planned -----------------------------------------------------

mq_section "failover 1: pg_autoctl perform failover"
T0=$(now)
"${AS[@]}" pg_autoctl perform failover --pgdata "$DIR/monitor" --wait 60 </dev/null >"$DIR/failover.log" 2>&1 ||
    { tail -n 20 "$DIR/failover.log"; die "pg_autoctl perform failover failed"; }
after_failover 1 "$T0" "pg_autoctl perform failover" "$PRIMARY"

# --- failover 2: the primary's postgres and pg_autoctl killed (-9) -----------

mq_section "failover 2: kill -9 of the primary's postgres and pg_autoctl"
if wait_until 60 both_ready; then
    echo "$(other "$PRIMARY") is a standby again; mq.metrics('demo') there: $(gauges on_node "$(other "$PRIMARY")")"
else
    die "$(other "$PRIMARY") did not come back as a standby within 60 s"
fi
VICTIM=$PRIMARY
PM_PID=$(head -n 1 "$DIR/$VICTIM/postmaster.pid")
T0=$(now)
kill -KILL -- "-${NODE_PG[$VICTIM]}" 2>/dev/null
kill -KILL "$PM_PID" 2>/dev/null
# the monitor notices (health checks, tuned above to seconds), demotes the
# dead primary, and promotes the standby
wait_until 60 writable "$(other "$VICTIM")" ||
    die "$(other "$VICTIM") was not promoted within 60 s"
after_failover 2 "$T0" "kill -9" "$VICTIM"

# --- drain ------------------------------------------------------------------

mq_section "stopping the producer, draining the queue"
on_primary -c "UPDATE demo_control SET stop_producer = true" >/dev/null || die "could not reach the primary"
for _ in $(seq 1 100); do kill -0 -- "-$PRODUCER_PG" 2>/dev/null || break; sleep 0.1; done
kill -0 -- "-$PRODUCER_PG" 2>/dev/null && die "the producer did not stop"
queue_empty() {
    [ "$(on_primary -c "SELECT ready + in_flight + delayed FROM mq.metrics('demo')" 2>/dev/null)" = 0 ]
}
# leases of messages delivered just before a switch expire (5 s) and come back
wait_until 30 queue_empty || echo "the queue is not empty after 30 s"
on_primary -c "UPDATE demo_control SET stop_consumer = true" >/dev/null
for _ in $(seq 1 50); do kill -0 -- "-$CONSUMER_PG" 2>/dev/null || break; sleep 0.1; done
echo "mq.metrics('demo') on $PRIMARY: $(gauges on_primary)"
# the killed node: its pg_autoctl started again rejoins it as a standby
start_bg "$VICTIM-again" "${AS[@]}" pg_autoctl run --pgdata "$DIR/$VICTIM"
if wait_until 60 both_ready; then
    echo "$VICTIM, restarted, rejoined as a standby; mq.metrics('demo') there: $(gauges on_node "$VICTIM")"
else
    echo "$VICTIM, restarted, has not rejoined as a standby within 60 s"
fi

# --- the count -----------------------------------------------------------------

mq_section "result"
S=$DIR/producer.out R=$DIR/consumer.out
awk '/^S / { print $2 ":" $3 }' "$S" | sort -u >"$DIR/sent.keys"
awk '/^R / && NF > 1 { n = split($2, k, ","); for (i = 1; i <= n; i++) print k[i] }' "$R" >"$DIR/delivered.keys"
sort -u "$DIR/delivered.keys" >"$DIR/received.keys"
sent=$(wc -l <"$DIR/sent.keys")
received=$(comm -12 "$DIR/sent.keys" "$DIR/received.keys" | wc -l)
lost=$(comm -23 "$DIR/sent.keys" "$DIR/received.keys" | wc -l)
deliveries=$(wc -l <"$DIR/delivered.keys")
duplicated=$((deliveries - $(wc -l <"$DIR/received.keys")))
unconfirmed=$(comm -13 "$DIR/sent.keys" "$DIR/received.keys" | wc -l)
awk '/^S / { print $5 }' "$S" | sort -n >"$DIR/sent.times"
# writes unavailable: the longest gap between two committed sends from
# 1 s before the failover to its end
write_gap() {
    awk -v a="$1" -v b="$2" '$1 >= a - 1 && $1 <= b {
        if (n++ && $1 - p > g) g = $1 - p; p = $1 } END { printf "%.2f", g }' "$DIR/sent.times"
}
echo "sent:        $sent (sends whose COMMIT returned to the producer)"
echo "received:    $received of them"
echo "lost:        $lost"
echo "duplicated:  $duplicated (deliveries of a message already delivered: at-least-once)"
echo "unconfirmed: $unconfirmed (sends in flight at a switch that had committed, delivered too)"
for f in "${FAILOVERS[@]}"; do
    IFS='|' read -r n how from to t0 t1 <<<"$f"
    echo "failover $n:  $how, $from -> $to: $(elapsed "$t0" "$t1") s until $to accepted writes;" \
         "writes unavailable for $(write_gap "$t0" "$(awk -v a="$t1" -v b="$TRAFFIC" 'BEGIN { printf "%.3f", a + b }')") s"
done
echo "connections: producer $(grep -c '^C ' "$S"), consumer $(grep -c '^C ' "$R")" \
     "(multi-host connection string, target_session_attrs=read-write)"
[ "$lost" -eq 0 ] || { comm -23 "$DIR/sent.keys" "$DIR/received.keys" | head -n 20; die "$lost committed sends were lost"; }
[ "$sent" -gt 0 ] || die "nothing was sent"
