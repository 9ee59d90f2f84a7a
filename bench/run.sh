#!/usr/bin/env bash
# bench/run.sh: what `make bench` runs.
#
# Compares mq with the hand-written "floor" queue (one plain table, INSERT /
# FOR UPDATE SKIP LOCKED lease / DELETE) on the same throwaway cluster, with
# pgbench, workload by workload, and prints a table: workload, floor tps, mq
# tps, mq/floor.  bench/RESULTS.md describes the workloads and holds the
# table of a full run; the pgbench scripts are in bench/scripts/.
#
#   bash bench/run.sh [--smoke] [--only W1,W2,...]
#
#   --smoke     every workload for ~1 s on tiny backlogs (~1.5 minutes in all);
#               exit status 0 only if every pgbench run was clean
#   --only L    run only the workloads of the comma-separated list L:
#               W1 W1n W2 W3 W4 W5 W6 W6b W7 W7n W8 W8b W9 W10 W11 W12 W13
#               WC (W6 includes W6b)
#   --clients   the same as --only WC (bench/clients.sh)
#
# Workloads (bench/RESULTS.md says more): W1 send; W1n W1 with mq.notify on
# vs off, a LISTENer connected; W2 receive+ack; W3 send_batch; W4 receive
# 100 + ack; W5 send-to-receive latency, polling consumers; W6 publish to 10
# subscribed queues vs 10 sends; W6b publish that matches none of 1,000
# subscriptions vs 1 send; W7 blocking-receive wake-up latency vs polling
# every 1 ms; W7n latency from a committed send to its NOTIFY; W8 W2 with the
# xmin horizon held; W8b W8 with blocking receives; W9 W2 on messages with
# group keys (1,000 and 10 groups; and with the xmin horizon held), against
# W2 on the same backlog without groups; W10 a 3-minute soak of 2
# producers and 2 consumers with the horizon held, sampled every 15 s, then
# 1 minute after it is released (smoke: 6 s + 4 s, samples every 2 s); W11
# many idle queues (the worker's cost, and throughput of the active ones);
# W12 a big backlog; W13 many consumers blocked in receive(wait); WC the
# Python and Node clients' Worker (concurrency 4, empty handler) draining a
# backlog, against a W2-like pgbench run of the same length (skipped with a
# note when a client's dependencies are missing, unless asked for by
# --only/--clients).  W1n and W7n compile bench/listen.c (cc, libpq).
#
# Environment:
#   PG_CONFIG        pg_config of the PostgreSQL to use (default: PostgreSQL
#                    15's, then the one on PATH)
#   MQ_BENCH_PORT    first port to try (default 55432)
#   MQ_BENCH_USER    OS user that runs the cluster when started as root
#                    (default postgres)
#   MQ_BENCH_TMPDIR  where the cluster's mktemp directory goes (default /tmp)
#   MQ_BENCH_NO_BUILD=1  do not build/install mq first
#   MQ_BENCH_T       seconds per workload of the full run (default 20)
#   MQ_BENCH_N_W2    W2 backlog of the full run (default 1200000)
#   MQ_BENCH_N_W4    W4 backlog of the full run (default 6000000)
#   MQ_BENCH_N_W8    W8 backlog of the full run (default 2000000)
#   MQ_BENCH_T_W10   W10 seconds with the horizon held (default 180)
#   MQ_BENCH_T_W10_AFTER  W10 seconds after it is released (default 60)
#   MQ_BENCH_EXTRA_CONF   lines added to the cluster's postgresql.conf (e.g.
#                    to load pg_stat_statements or auto_explain)
#   MQ_BENCH_N_W11   W11 queues of the full run, the last point of its curve
#                    (default 10000)
#   MQ_BENCH_N_W12   W12 big backlog of the full run (default 2000000; the
#                    goal is stated for 10000000)
#   MQ_BENCH_N_W13   W13 waiting sessions of the full run (default 200)
#   MQ_BENCH_N_WC    WC: messages each client drains (default 100000)
#   MQ_PYTHON        WC: python with psycopg 3 (default /usr/bin/python3)
#   MQ_BENCH_N_W9    W9 backlog of the full run (default 600000: 200000 ran dry
#                    within 20 s on a quiet machine; with the
#                    xmin horizon held: 3 times as many)
#   CC               compiler for bench/listen.c (default cc)
#
# The cluster lives in a mktemp directory, listens only on a unix socket in
# that directory, and is stopped and removed on exit, also after a failure
# or an interrupt.  Any pgbench error, aborted client or mismatch between
# the transactions pgbench counted and the rows in the queue stops the run
# with a message and a non-zero exit status: no ratio is ever printed from a
# failed run.  The table is also written to bench/results/latest.txt, the
# pgbench and server logs of the last run are kept in bench/results/logs/.

set -u -o pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MQ_ROOT=$(cd "$BENCH_DIR/.." && pwd)

# ---------------------------------------------------------------- options

SMOKE=0
ONLY=
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) SMOKE=1 ;;
        --only) shift; ONLY=${1:-} ;;
        --only=*) ONLY=${1#--only=} ;;
        --clients) ONLY=WC ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "bench: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
ALL_WORKLOADS="W1 W1N W2 W3 W4 W5 W6 W6B W7 W7N W8 W8B W9 W10 W11 W12 W13 WC"
ONLY=$(echo "$ONLY" | tr ',a-z' ' A-Z')
for w in $ONLY; do
    case " $ALL_WORKLOADS " in *" $w "*) ;; *) echo "bench: unknown workload '$w' in --only" >&2; exit 2 ;; esac
done
case " $ONLY " in *" W6 "*) ONLY="$ONLY W6B" ;; esac
want() { [ -z "$ONLY" ] || case " $ONLY " in *" ${1^^} "*) return 0 ;; *) return 1 ;; esac; }

if [ "$SMOKE" -eq 1 ]; then
    T=1             # seconds per pgbench run
    T_W8=3
    PROGRESS_W8=1   # W8: tps of the first and last interval of this length
    T_W10=6         # W10: seconds with the horizon held, then after it
    T_W10_AFTER=4
    SAMPLE_W10=2    # W10: seconds between samples
    N_W2=2000       # backlogs
    N_W4=20000
    N_W8=3000
    N_WC=3000       # WC: messages each client worker drains
    N_W9=2000
    W5_RATE=200     # W5: total producer rate, messages/s
    N_W7=50         # W7: wake-ups measured
    N_W7N=30        # W7n: notifications measured
    W11_CURVE="100"      # W11: queues in all, at each point of the curve
    W11_ACTIVE=10        # W11: queues with traffic
    W11_IDLE_SECS=1      # W11: seconds the worker's idle cost is measured
    T_W11=1              # W11: seconds of each mix run
    N_W12_SMALL=1000     # W12: the small and the big backlog
    N_W12=5000
    W12_REPS=1           # W12: send runs on each backlog (median)
    W12_RECV_REPS=1      # W12: receive runs on each backlog (median)
    W9_REPS=2            # W9: runs on each queue, alternating (median)
    W13_CURVE="1 4"      # W13: waiting sessions, at each point of the curve
    W13_IDLE_SECS=1
    N_W13=10             # W13: wake-ups measured
    N_W13_BURST=30       # W13: messages of the one-transaction burst
    FSYNC_SECS=1
else
    T=${MQ_BENCH_T:-20}
    T_W8=60
    PROGRESS_W8=10
    T_W10=${MQ_BENCH_T_W10:-180}
    T_W10_AFTER=${MQ_BENCH_T_W10_AFTER:-60}
    SAMPLE_W10=15
    N_W2=${MQ_BENCH_N_W2:-1200000}
    N_W4=${MQ_BENCH_N_W4:-6000000}
    N_W8=${MQ_BENCH_N_W8:-2000000}
    N_WC=${MQ_BENCH_N_WC:-100000}
    N_W9=${MQ_BENCH_N_W9:-600000}
    W5_RATE=1000
    N_W7=1000
    N_W7N=200
    N_W11=${MQ_BENCH_N_W11:-10000}
    W11_CURVE="1000 3000 $N_W11"
    W11_ACTIVE=100
    W11_IDLE_SECS=10
    T_W11=$T
    N_W12_SMALL=10000
    W12_REPS=3
    W12_RECV_REPS=9      # each only ~0.5 s: the small backlog must not run dry
    W9_REPS=4            # W9: runs of T/2 s on each queue, alternating (median)
    N_W12=${MQ_BENCH_N_W12:-2000000}
    N_W13_MAX=${MQ_BENCH_N_W13:-200}
    W13_CURVE="1 50 $N_W13_MAX"
    W13_IDLE_SECS=10
    N_W13=300
    N_W13_BURST=1000
    FSYNC_SECS=2
fi
PAYLOAD='{"order": 12345, "customer": "c-42", "amount": 99.5}'

# ------------------------------------------------------------ environment

# Nothing of the caller's libpq or make environment leaks into the runs.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS
for v in $(compgen -e); do
    case $v in PG[A-Z]*) [[ $v == *_* ]] || unset "$v" ;; esac
done
export LANG=C.UTF-8
unset LC_ALL LANGUAGE

if [ -z "${PG_CONFIG:-}" ]; then
    if [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
        PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
    else
        PG_CONFIG=$(command -v pg_config || true)
    fi
fi
[ -n "$PG_CONFIG" ] && [ -x "$PG_CONFIG" ] || { echo "bench: no pg_config (set PG_CONFIG)" >&2; exit 1; }
BINDIR=$("$PG_CONFIG" --bindir)
for p in initdb pg_ctl postgres psql pgbench pg_test_fsync; do
    [ -x "$BINDIR/$p" ] || { echo "bench: $BINDIR/$p is missing" >&2; exit 1; }
done

DIR=
DATA=
STARTED=0
HOLDER_PID=
BG_PIDS=()

log() { printf '%s\n' "$*" >&2; }
die() {
    log ""
    log "bench: FAILED: $*"
    exit 1
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    local p
    for p in "${BG_PIDS[@]}" $HOLDER_PID; do
        kill "$p" 2>/dev/null
    done
    if [ "$STARTED" -eq 1 ] && [ -f "$DATA/postmaster.pid" ]; then
        "${AS[@]}" pg_ctl -D "$DATA" -m immediate -w -t 60 stop >/dev/null 2>&1 </dev/null
    fi
    for p in "${BG_PIDS[@]}" $HOLDER_PID; do
        wait "$p" 2>/dev/null
    done
    if [ -n "$DIR" ] && [ -d "$DIR/out" ]; then
        # keep the pgbench and server logs of the last run
        rm -rf "$BENCH_DIR/results/logs" && mkdir -p "$BENCH_DIR/results/logs" &&
            cp "$DIR"/out/*.log "$DIR"/server.log "$BENCH_DIR/results/logs/" 2>/dev/null
    fi
    if [ -n "$DIR" ] && [ -d "$DIR" ]; then
        # a postmaster left behind (pg_ctl failed): stop it by its pid
        if [ -f "$DATA/postmaster.pid" ]; then
            p=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null)
            if [[ $p =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = postgres ]; then
                kill -QUIT "$p" 2>/dev/null
                for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
                kill -KILL "$p" 2>/dev/null
            fi
        fi
        rm -rf "$DIR"
    fi
    [ "$rc" -eq 0 ] || log "bench: exit status $rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "bench: interrupted"; exit 130' INT TERM HUP

# -------------------------------------------------------- build / install

if [ "${MQ_BENCH_NO_BUILD:-0}" != 1 ]; then
    log "== build"
    make -C "$MQ_ROOT" --no-print-directory -s PG_CONFIG="$PG_CONFIG" all >&2 || die "build failed"
    if [ "$(id -u)" -eq 0 ]; then
        make -C "$MQ_ROOT" --no-print-directory -s PG_CONFIG="$PG_CONFIG" install >/dev/null ||
            die "make install failed"
    elif ! cmp -s "$MQ_ROOT/mq.so" "$("$PG_CONFIG" --pkglibdir)/mq.so"; then
        die "the installed mq.so differs from the build; run: sudo make -C $MQ_ROOT install PG_CONFIG=$PG_CONFIG"
    fi
fi
[ -f "$("$PG_CONFIG" --sharedir)/extension/mq.control" ] || die "mq is not installed"

# ---------------------------------------------------------------- cluster

if [ "$(id -u)" -eq 0 ]; then
    RUN_USER=${MQ_BENCH_USER:-postgres}
    id -u "$RUN_USER" >/dev/null 2>&1 || die "no OS user $RUN_USER to run the cluster (set MQ_BENCH_USER)"
    [ "$(id -u "$RUN_USER")" -ne 0 ] || die "MQ_BENCH_USER must not be root"
else
    RUN_USER=$(id -un)
fi

DIR=$(mktemp -d "${MQ_BENCH_TMPDIR:-/tmp}/mq-bench-XXXXXX") || die "mktemp failed"
DATA=$DIR/data
OUT=$DIR/out
mkdir -p "$OUT" "$DIR/scripts" "$DIR/tmp"
cp "$BENCH_DIR"/scripts/*.sql "$DIR/scripts/"
chmod 755 "$DIR"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=${MQ_BENCH_PORT:-55432}
while port_in_use "$PORT"; do PORT=$((PORT + 1)); done

ENVV=(HOME="$DIR" TMPDIR="$DIR/tmp" PATH="$BINDIR:$PATH" LANG=C.UTF-8
      PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres PGDATABASE=bench)
if [ "$(id -u)" -eq 0 ]; then
    chown -R "$RUN_USER:" "$DIR" || die "could not hand $DIR to $RUN_USER"
    AS=(runuser -u "$RUN_USER" -- env "${ENVV[@]}")
else
    AS=(env "${ENVV[@]}")
fi

# pg_test_fsync: only its fdatasync line is wanted (the second test, after
# ~2 x FSYNC_SECS), so it is stopped once that line is out.
log "== pg_test_fsync -s $FSYNC_SECS ($DIR)"
( cd "$DIR" && exec "${AS[@]}" pg_test_fsync -s "$FSYNC_SECS" -f "$DIR/tmp/fsync.test" ) \
    >"$OUT/fsync.log" 2>&1 </dev/null &
fsync_pid=$!
BG_PIDS+=("$fsync_pid")
FDATASYNC=
for _ in $(seq 1 $((FSYNC_SECS * 100 + 300))); do
    FDATASYNC=$(awk '$1 == "fdatasync" { print $2; exit }' "$OUT/fsync.log")
    [ -n "$FDATASYNC" ] && break
    kill -0 "$fsync_pid" 2>/dev/null || break
    sleep 0.1
done
kill "$fsync_pid" 2>/dev/null
wait "$fsync_pid" 2>/dev/null
BG_PIDS=()
[[ $FDATASYNC =~ ^[0-9.]+$ ]] && FDATASYNC=$(printf '%.0f' "$FDATASYNC") || FDATASYNC="n/a"
log "fdatasync: $FDATASYNC ops/sec"

log "== initdb ($DATA, as $RUN_USER, port $PORT)"
"${AS[@]}" initdb -D "$DATA" -U postgres -A trust -E UTF8 --no-sync </dev/null \
    >"$OUT/initdb.log" 2>&1 || { cat "$OUT/initdb.log" >&2; die "initdb failed"; }
cat >>"$DATA/postgresql.conf" <<EOF

# written by bench/run.sh
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
shared_preload_libraries = 'mq'
shared_buffers = 1GB
max_connections = 260
# W11 uses 10,000 queues, each with a shared entry
mq.max_queues = 12000
# no checkpoint in the middle of a measurement: run.sh checkpoints before each
max_wal_size = 16GB
min_wal_size = 1GB
checkpoint_timeout = 1h
# pgbench sets it per run (PGOPTIONS); this is for loading and bookkeeping
synchronous_commit = off
log_min_messages = warning
log_checkpoints = off
${MQ_BENCH_EXTRA_CONF:-}
EOF
"${AS[@]}" pg_ctl -D "$DATA" -l "$DIR/server.log" -w -t 60 start </dev/null >/dev/null 2>&1 ||
    { tail -n 30 "$DIR/server.log" >&2; die "the cluster did not start"; }
STARTED=1

# psql as the cluster's user; -c or stdin (sql_in: also COPY FROM STDIN)
sql() { "${AS[@]}" psql -X -q -At -v ON_ERROR_STOP=1 "$@" </dev/null; }
sql_in() { "${AS[@]}" psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

"${AS[@]}" createdb bench </dev/null || die "createdb failed"
sql -f "$DIR/scripts/setup.sql" >/dev/null || die "setup.sql failed"
PG_VERSION=$(sql -c "SHOW server_version") || die "no server version"

# ------------------------------------------------------------- state prep

# Empty both queues (each side runs with the other side empty), then load
# $2 messages into side $1 (floor|mq), vacuum, analyze and checkpoint.
prepare() {
    local side=$1 n=$2
    sql -c "TRUNCATE floor_q RESTART IDENTITY; TRUNCATE bench_latency" >/dev/null &&
    sql -c "SELECT mq.drop_queue('bench')" >/dev/null &&
    sql -c "SELECT mq.create_queue('bench')" >/dev/null || die "could not reset the queues"
    local t0=$SECONDS
    if [ "$n" -gt 0 ]; then
        log "   loading $n messages into $side"
        if [ "$side" = floor ]; then
            sql -c "INSERT INTO floor_q (message) SELECT '$PAYLOAD'::jsonb FROM generate_series(1, $n)" \
                >/dev/null || die "loading floor_q failed"
        else
            queue_top_up bench "$n"     # batches of 10000, one transaction each
        fi
    fi
    sql -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null || die "vacuum/checkpoint failed"
    [ "$n" -eq 0 ] || log "   loaded, vacuumed and checkpointed in $((SECONDS - t0)) s"
    local have
    have=$(count_msgs "$side")
    [ "$have" = "$n" ] || die "$side: loaded $n messages but the queue holds $have"
}

# Empty the queues, then load $1 messages into mq with group keys g0 ..
# g($2 - 1), message i in group i mod $2 (the groups interleave, as
# independent senders would make them).
prepare_grouped() {
    local n=$1 groups=$2
    prepare mq 0
    local t0=$SECONDS
    log "   loading $n messages in $groups groups into mq"
    queue_top_up bench "$n" "$groups"
    sql -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null || die "vacuum/checkpoint failed"
    log "   loaded, vacuumed and checkpointed in $((SECONDS - t0)) s"
    local have
    have=$(count_msgs mq)
    [ "$have" = "$n" ] || die "mq: loaded $n grouped messages but the queue holds $have"
    have=$(sql -c "SELECT groups FROM mq.metrics('bench')")
    [ "$have" = "$groups" ] || [ "$n" -lt "$groups" ] || die "mq: loaded $groups groups but the queue has $have"
}

# Messages in mq queue $1 (ready, backlogs included, in flight, delayed).
queue_count() { sql -c "SELECT ready + in_flight + delayed FROM mq.metrics('$1')"; }
# queue_top_up QUEUE N [GROUPS]: send to QUEUE until it holds N messages,
# in batches of 10000; with GROUPS, message i (counting those it holds) in
# group i mod GROUPS.
queue_top_up() {
    local q=$1 n=$2 groups=${3:-0} have k
    have=$(queue_count "$q") || die "could not count the messages of $q"
    [ "$have" -lt "$n" ] || return 0
    while [ "$have" -lt "$n" ]; do
        k=$(( n - have > 10000 ? 10000 : n - have ))
        if [ "$groups" -eq 0 ]; then
            echo "SELECT count(*) FROM mq.send_batch('$q', array_fill('$PAYLOAD'::jsonb, ARRAY[$k]));"
        else
            echo "SELECT count(*) FROM mq.send_batch('$q', array_fill('$PAYLOAD'::jsonb, ARRAY[$k]),"
            echo "  group_keys => ARRAY(SELECT 'g' || (i % $groups) FROM generate_series($have, $((have + k - 1))) i));"
        fi
        have=$((have + k))
    done | sql_in >/dev/null || die "could not fill $q"
}

# Messages in the queue of side $1 (ready, in flight or delayed).
count_msgs() {
    if [ "$1" = floor ]; then
        sql -c "SELECT count(*) FROM floor_q"
    else
        queue_count bench
    fi
}

# ------------------------------------------------------------- pgbench run

# run_pgbench TAG SYNC CLIENTS SECONDS SCRIPT [pgbench options...]
# SECONDS may be Nx: N transactions per client instead of a duration.
# PGB_GUCS, if set, adds settings ("-c name=value ...") to the sessions.
# Sets TPS and NXACT; dies on any error.  Output in $OUT/TAG.log.
PGB_GUCS=
run_pgbench() {
    local tag=$1 sync=$2 clients=$3 secs=$4 script=$5
    shift 5
    local out=$OUT/$tag.log len=(-T "$secs")
    [[ $secs == *x ]] && len=(-t "${secs%x}")
    "${AS[@]}" PGOPTIONS="-c synchronous_commit=$sync $PGB_GUCS" \
        pgbench -n -M prepared -c "$clients" -j 2 "${len[@]}" --progress=5 \
        -f "$DIR/scripts/$script" "$@" </dev/null >"$out" 2>&1
    local rc=$?
    check_pgbench "$tag" "$out" "$rc"
}

# check_pgbench TAG LOGFILE EXIT_STATUS: die unless the run was clean; set
# TPS and NXACT from its summary.
check_pgbench() {
    local tag=$1 out=$2 rc=$3 failed
    if [ "$rc" -ne 0 ] || grep -qE 'ERROR|FATAL|aborted|Run was aborted' "$out"; then
        log "---- $out"
        grep -E 'ERROR|FATAL|abort|error' "$out" | head -n 10 >&2
        tail -n 5 "$out" >&2
        die "$tag: pgbench failed (exit status $rc)"
    fi
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    [ -z "$failed" ] || [ "$failed" -eq 0 ] || die "$tag: $failed failed transactions (see $out)"
    TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out")
    NXACT=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    [ -n "$TPS" ] && [ -n "$NXACT" ] || { tail -n 20 "$out" >&2; die "$tag: no tps in the pgbench output"; }
    [ "$NXACT" -gt 0 ] || die "$tag: no transaction completed"
}

# check_count TAG SIDE EXPECTED SLACK: the queue must hold EXPECTED messages,
# give or take SLACK (transactions in flight when pgbench's clock ran out).
check_count() {
    local tag=$1 side=$2 exp=$3 slack=$4 have
    have=$(count_msgs "$side") || die "$tag: could not count messages"
    if [ "$have" -lt $((exp - slack)) ] || [ "$have" -gt $((exp + slack)) ]; then
        die "$tag: pgbench's transaction count implies $exp messages left in the queue, it holds $have"
    fi
}

# --------------------------------------------------------------- results

declare -A R   # R[key,floor] / R[key,mq]
ROWS=()        # "key|label|kind"  kind: tps, cost, ms, frac
NOTES=()

fmt() {
    case $1 in
        ''|-) printf '%s' "-" ;;
        *) printf '%.*f' "$2" "$1" ;;
    esac
}

# workload_tps KEY LABEL SYNC CLIENTS SECONDS SCRIPT_STEM BACKLOG PER_XACT SENDS
# Runs floor then mq; BACKLOG messages preloaded; each transaction sends
# (SENDS=1) or consumes (SENDS=0) PER_XACT messages.
workload_tps() {
    local key=$1 label=$2 sync=$3 clients=$4 secs=$5 stem=$6 backlog=$7 per=$8 sends=$9
    local side left
    for side in floor mq; do
        log "== $key $side: $label (synchronous_commit=$sync)"
        prepare "$side" "$backlog"
        run_pgbench "$key-$side" "$sync" "$clients" "$secs" "${side}_$stem.sql"
        if [ "$sends" -eq 1 ]; then
            check_count "$key-$side" "$side" $((NXACT * per)) $((clients * per))
        else
            left=$(count_msgs "$side")
            if [ "$left" -eq 0 ]; then
                NOTES+=("$key $side: the backlog of $backlog ran dry; its tps includes empty receives")
                [ "$SMOKE" -eq 1 ] || die "$key $side: the backlog of $backlog ran dry, the tps would be wrong"
            else
                check_count "$key-$side" "$side" $((backlog - NXACT * per)) $((clients * per))
            fi
        fi
        R[$key,$side]=$TPS
        log "   $side: $TPS tps ($NXACT transactions)"
    done
    ROWS+=("$key|$label|tps")
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

# median V...: the middle value, or the mean of the two middle ones.
median() {
    printf '%s\n' "$@" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# latency_stats SIDE: LAT_N, LAT_P50, LAT_P99 (ms) of bench_latency's rows
# of SIDE (percentile_cont, as W5).
latency_stats() {
    local out
    out=$(sql -F ' ' -c "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FROM bench_latency WHERE side = '$1'") ||
        die "could not read the latencies of $1"
    read -r LAT_N LAT_P50 LAT_P99 <<<"$out"
}

# wait_bg PID SECONDS APPNAME: wait for background job PID at most SECONDS;
# if it is still running then, terminate its sessions (application_name
# APPNAME) and return 124.  Otherwise return its exit status.
wait_bg() {
    local pid=$1 secs=$2 app=$3
    for _ in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$app'" >/dev/null
        wait "$pid" 2>/dev/null
        return 124
    fi
    wait "$pid"
}

# wait_session APPNAME CONDITION WHAT: wait (10 s at most) until a session
# with that application_name satisfies the SQL condition on
# pg_stat_activity; die with WHAT otherwise.
wait_session() {
    local app=$1 cond=$2 what=$3 n
    for _ in $(seq 1 100); do
        n=$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$app' AND $cond")
        [ "$n" = 1 ] && return 0
        sleep 0.1
    done
    die "$what"
}

# start_listener TAG CHANNEL: a session LISTENs to CHANNEL in the background
# (bench/listen.c, counting what it gets); returns once its LISTEN is in.
# stop_listener TAG: stop it (NOTIFY bench_stop) and set NOTIFIED to the
# number of notifications it got on CHANNEL.
LISTENER_PID=
start_listener() {
    local tag=$1 channel=$2
    "${AS[@]}" "$DIR/listen" drain "$channel" bench_stop $((T + 120)) \
        </dev/null >"$OUT/$tag-listen.log" 2>&1 &
    LISTENER_PID=$!
    BG_PIDS+=("$LISTENER_PID")
    for _ in $(seq 1 100); do
        grep -q '^listening$' "$OUT/$tag-listen.log" && return 0
        kill -0 "$LISTENER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$OUT/$tag-listen.log" >&2
    die "$tag: the LISTEN session did not start"
}
stop_listener() {
    local tag=$1 rc
    sql -c "NOTIFY bench_stop" >/dev/null || die "$tag: NOTIFY bench_stop failed"
    wait "$LISTENER_PID"
    rc=$?
    BG_PIDS=()
    LISTENER_PID=
    NOTIFIED=$(sed -n 's/^received \([0-9]*\)$/\1/p' "$OUT/$tag-listen.log")
    if [ "$rc" -ne 0 ] || [ -z "$NOTIFIED" ]; then
        cat "$OUT/$tag-listen.log" >&2
        die "$tag: the LISTEN session failed (exit status $rc)"
    fi
}

# target NAME VALUE OP LIMIT: a note saying whether VALUE meets the target.
target() {
    local verdict
    verdict=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN {
        ok = (op == "<=") ? v <= l : (op == ">=") ? v >= l : (op == "<") ? v < l : v > l
        print (ok ? "met" : "MISSED") }')
    NOTES+=("target $1 $3 $4: $(fmt "$2" 2), $verdict")
}

# -------------------------------------------------- LISTEN helper (W1n, W7n)

if want W1n || want W7n; then
    log "== compile bench/listen.c"
    "${CC:-cc}" -O2 -Wall -o "$DIR/listen" "$BENCH_DIR/listen.c" \
        -I"$("$PG_CONFIG" --includedir)" -L"$("$PG_CONFIG" --libdir)" -lpq >"$OUT/listen-cc.log" 2>&1 || {
        cat "$OUT/listen-cc.log" >&2
        die "could not compile bench/listen.c (W1n, W7n need a C compiler and libpq-fe.h: apt-get install libpq-dev)"
    }
    chmod 755 "$DIR/listen"
fi

# ------------------------------------------------------------- workloads

log "== PostgreSQL $PG_VERSION, $(nproc) cores, $([ "$SMOKE" -eq 1 ] && echo smoke || echo full) run"

if want W1; then
    workload_tps W1off "W1 send, 1/xact, 4 clients, sync off" off 4 "$T" send 0 1 1
    workload_tps W1on "W1 send, 1/xact, 4 clients, sync on" on 4 "$T" send 0 1 1
fi

if want W1n; then
    # W1 on mq (sync off) with mq.notify on, then off, on, off (this noisy
    # machine drifts); medians.  A session LISTENs to mq_bench throughout:
    # with notify on it must get notifications, with notify off none.
    W1N_ON=() W1N_OFF=() W1N_GOT=()
    for round in 1 2; do
        for mode in on off; do
            tag=W1n-$mode$round
            log "== $tag: W1 mq send, 4 clients, sync off, mq.notify=$mode, LISTEN mq_bench"
            prepare mq 0
            start_listener "$tag" mq_bench
            PGB_GUCS="-c mq.notify=$mode"
            run_pgbench "$tag" off 4 "$T" mq_send.sql
            PGB_GUCS=
            check_count "$tag" mq "$NXACT" 4
            stop_listener "$tag"
            if [ "$mode" = on ]; then
                [ "$NOTIFIED" -gt 0 ] || die "$tag: mq.notify=on, but the LISTEN session got no notification"
                W1N_ON+=("$TPS")
                W1N_GOT+=("$NOTIFIED")
            else
                [ "$NOTIFIED" -eq 0 ] || die "$tag: mq.notify=off, but the LISTEN session got $NOTIFIED notifications"
                W1N_OFF+=("$TPS")
            fi
            log "   notify $mode: $TPS tps ($NXACT transactions), $NOTIFIED notifications received"
        done
    done
    R[W1n,floor]=$(median "${W1N_OFF[@]}")
    R[W1n,mq]=$(median "${W1N_ON[@]}")
    ROWS+=("W1n|W1n mq send, 4 cl, sync off: notify on (floor: off)|tps")
    NOTES+=("W1n: mq.notify on $(fmt "${W1N_ON[0]}" 0), $(fmt "${W1N_ON[1]}" 0) tps; off $(fmt "${W1N_OFF[0]}" 0), $(fmt "${W1N_OFF[1]}" 0) tps (run on, off, on, off); the LISTENer got ${W1N_GOT[0]} and ${W1N_GOT[1]} notifications in the on runs, 0 in the off runs")
    target "W1n on/off" "$(ratio "${R[W1n,mq]}" "${R[W1n,floor]}")" ">=" 0.95
fi
if want W2; then
    workload_tps W2off "W2 receive+ack, 1/xact, 4 cl, sync off" off 4 "$T" recv1 "$N_W2" 1 0
    workload_tps W2on "W2 receive+ack, 1/xact, 4 cl, sync on" on 4 "$T" recv1 "$N_W2" 1 0
fi
if want W3; then
    workload_tps W3 "W3 send_batch 100, 2 clients" off 2 "$T" send100 0 100 1
fi
if want W4; then
    workload_tps W4 "W4 receive 100+ack[], 2 clients" off 2 "$T" recv100 "$N_W4" 100 0
fi

if want W5; then
    # 2 producers at a fixed total rate, 2 consumers polling (1 ms sleep
    # when empty); latency = receive clock - send clock stored in the message.
    for side in floor mq; do
        log "== W5 $side: latency, 2 producers at $W5_RATE msg/s + 2 consumers"
        prepare "$side" 0
        "${AS[@]}" PGOPTIONS="-c synchronous_commit=off" \
            pgbench -n -M prepared -c 2 -j 2 -T "$T" -f "$DIR/scripts/${side}_lat_recv.sql" \
            </dev/null >"$OUT/W5-$side-consumers.log" 2>&1 &
        cpid=$!
        BG_PIDS+=("$cpid")
        run_pgbench "W5-$side-producers" off 2 "$T" "${side}_lat_send.sql" -R "$W5_RATE"
        ptps=$TPS
        wait "$cpid"
        crc=$?
        BG_PIDS=()
        check_pgbench "W5-$side-consumers" "$OUT/W5-$side-consumers.log" "$crc"
        read -r n p50 p99 < <(sql -F ' ' -c "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FROM bench_latency WHERE side = '$side'")
        [ "${n:-0}" -gt 0 ] || die "W5 $side: no message was received"
        R[W5p50,$side]=$p50
        R[W5p99,$side]=$p99
        log "   $side: producers $ptps tps, $n received, p50 $p50 ms, p99 $p99 ms"
        NOTES+=("W5 $side: producers ran at $(fmt "$ptps" 0) msg/s, $n messages received")
    done
    ROWS+=("W5p50|W5 latency p50 (ms), lower is better|ms")
    ROWS+=("W5p99|W5 latency p99 (ms), lower is better|ms")
fi

# W6, W6b: publish vs the sends it replaces, 2 clients, sync off.  The
# "floor" column holds the comparison (mq sends), the last column the cost
# ratio publish / comparison (= floor tps / mq tps).
W6_QUEUES="queue IN ('w6_q1', 'w6_q2', 'w6_q3', 'w6_q4', 'w6_q5', 'w6_q6', 'w6_q7', 'w6_q8', 'w6_q9', 'w6_q10')"

# w6_prepare: empty the 10 queues, then what prepare does (bench emptied too).
w6_prepare() {
    sql -c "SELECT sum(mq.purge_queue('w6_q' || i)) FROM generate_series(1, 10) i" >/dev/null ||
        die "W6: could not empty the queues"
    prepare mq 0
}

# w6_check TAG EXPECTED SLACK: each of the 10 queues holds EXPECTED
# messages, give or take SLACK.
w6_check() {
    local tag=$1 exp=$2 slack=$3 out n lo hi
    out=$(sql -F ' ' -c "SELECT count(*), min(ready + in_flight + delayed), max(ready + in_flight + delayed) FROM mq.metrics() WHERE $W6_QUEUES") ||
        die "$tag: could not count messages"
    read -r n lo hi <<<"$out"
    [ "$n" = 10 ] || die "$tag: $n of the 10 W6 queues found"
    if [ "$lo" -lt $((exp - slack)) ] || [ "$hi" -gt $((exp + slack)) ]; then
        die "$tag: pgbench's transaction count implies $exp messages in each W6 queue, they hold $lo to $hi"
    fi
}

if want W6 || want W6b; then
    log "== W6 setup: queues w6_q1..w6_q10, each subscribed to 'orders.*'"
    sql -c "SELECT count(mq.create_queue('w6_q' || i)) FROM generate_series(1, 10) i" \
        -c "SELECT count(mq.subscribe('w6_q' || i, 'orders.*')) FROM generate_series(1, 10) i" \
        >/dev/null || die "W6: setup failed"
fi

if want W6; then
    for side in floor mq; do
        if [ "$side" = floor ]; then
            script=mq_w6_send10.sql what="10 mq.send, one statement"
        else
            script=mq_w6_publish.sql what="mq.publish('orders.paid'), 10 subscribed queues"
        fi
        log "== W6 $side: $what, 2 clients, sync off"
        w6_prepare
        run_pgbench "W6-$side" off 2 "$T" "$script"
        w6_check "W6-$side" "$NXACT" 2
        R[W6,$side]=$TPS
        log "   $side: $TPS tps ($NXACT transactions, 10 messages each)"
    done
    ROWS+=("W6|W6 publish to 10 subs (floor: 10 sends) [cost]|cost")
    target "W6 cost publish/10 sends" "$(ratio "${R[W6,floor]}" "${R[W6,mq]}")" "<=" 1.25
fi

if want W6b; then
    # 1,000 more subscriptions on the same queues, none matching
    # 'billing.refunded', in four shapes: first word literal ('svcN.*',
    # 'svcN.#.done'), first word a wildcard ('*.evtN'), '#' at both ends
    # ('#.evtN.#').
    log "== W6b setup: 1,000 subscriptions that 'billing.refunded' does not match"
    n=$(sql -c "SELECT count(mq.subscribe('w6_q' || (i % 10 + 1),
                   CASE i % 4 WHEN 0 THEN 'svc' || i || '.*' WHEN 1 THEN 'svc' || i || '.#.done'
                              WHEN 2 THEN '*.evt' || i ELSE '#.evt' || i || '.#' END))
                  FROM generate_series(1, 1000) i" \
            -c "SELECT count(*) FROM mq.subscriptions WHERE pattern <> 'orders.*'" | tail -n 1) ||
        die "W6b: setup failed"
    [ "$n" = 1000 ] || die "W6b: 1000 subscriptions wanted, $n found"
    for side in floor mq; do
        w6_prepare
        if [ "$side" = floor ]; then
            log "== W6b floor: one mq.send, 2 clients, sync off"
            run_pgbench "W6b-floor" off 2 "$T" mq_send.sql
            check_count "W6b-floor" mq "$NXACT" 2
        else
            log "== W6b mq: mq.publish('billing.refunded'), 1,010 subscriptions, none matching, 2 clients, sync off"
            run_pgbench "W6b-mq" off 2 "$T" mq_w6b_publish.sql
            w6_check "W6b-mq" 0 0
            check_count "W6b-mq" mq 0 0
        fi
        R[W6b,$side]=$TPS
        log "   $side: $TPS tps ($NXACT transactions)"
    done
    ROWS+=("W6b|W6b publish, none of 1000 subs (floor: 1 send) [cost]|cost")
fi

# W7: wake-up latency of a blocking receive.  One producer sends N_W7
# messages, one per transaction, 5 ms apart, each carrying clock_timestamp()
# taken just before its commit; the consumer records clock_timestamp() -
# that when its receive returns.  mq: one waiter in mq.receive(wait => 5 s)
# (pgbench); floor: mq.receive without wait, polled every ~1 ms by a DO loop
# that commits after each poll (pg_sleep(0.0009): pg_sleep sleeps in whole
# milliseconds, and pg_sleep(0.001) takes ~2 ms, as it wakes up a hair before
# its end and sleeps another ms; the loop reports its mean poll period).
# Not counted (side 'warmup'): one
# message sent before the producer starts, which the consumer must have
# handled first (its first receive, insert and ack plan their statements),
# and the producer's first (its first send does).
if want W7; then
    sql -c "SELECT mq.create_queue('w7')" >/dev/null || die "W7: could not create queue w7"
    limit=$((N_W7 * 20 / 1000 + 30))   # seconds a consumer may take in all
    total=$((N_W7 + 2))                 # messages a consumer handles
    for side in floor mq; do
        sql -c "SELECT mq.purge_queue('w7')" -c "TRUNCATE bench_latency" -c "VACUUM (ANALYZE)" -c "CHECKPOINT" \
            >/dev/null || die "W7: could not reset queue w7"
        if [ "$side" = floor ]; then
            app=mq_bench_w7poll lside=w7poll
            log "== W7 floor: $N_W7 messages 5 ms apart, a consumer polling mq.receive every ~1 ms"
            "${AS[@]}" PGAPPNAME=$app PGOPTIONS="-c synchronous_commit=off" psql -X -q -v ON_ERROR_STOP=1 -c "
DO \$\$
DECLARE
    n int := 0;
    polls int := 0;
    rid bigint;
    lat float8;
    warm int;
    t0 timestamptz := clock_timestamp();
    deadline timestamptz := clock_timestamp() + interval '$limit s';
BEGIN
    WHILE n < $total LOOP
        polls := polls + 1;
        SELECT id, extract(epoch FROM clock_timestamp() - (message->>'t')::timestamptz) * 1000,
               coalesce((message->>'warmup')::int, 0)
          INTO rid, lat, warm FROM mq.receive('w7', 1);
        IF rid IS NOT NULL THEN
            INSERT INTO bench_latency VALUES (CASE WHEN warm = 1 THEN 'warmup' ELSE '$lside' END, lat);
            PERFORM mq.ack('w7', rid);
            n := n + 1;
        ELSIF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'W7 poller: % of $total messages received in $limit s', n;
        ELSE
            PERFORM pg_sleep(0.0009);
        END IF;
        COMMIT;
    END LOOP;
    RAISE NOTICE 'W7 poller: mean poll period % ms',
        round((extract(epoch FROM clock_timestamp() - t0) * 1000 / polls)::numeric, 3);
END
\$\$" </dev/null >"$OUT/W7-floor-consumer.log" 2>&1 &
            ready="state = 'active'"
        else
            app=mq_bench_w7 lside=w7
            log "== W7 mq: $N_W7 messages 5 ms apart, a waiter in mq.receive(wait => '5 s')"
            "${AS[@]}" PGAPPNAME=$app PGOPTIONS="-c synchronous_commit=off" \
                pgbench -n -M prepared -c 1 -t "$total" -f "$DIR/scripts/mq_w7_wait.sql" \
                </dev/null >"$OUT/W7-mq-consumer.log" 2>&1 &
            ready="wait_event_type = 'Extension'"
        fi
        cpid=$!
        BG_PIDS+=("$cpid")
        wait_session "$app" "$ready" "W7 $side: the consumer did not start (see $OUT/W7-$side-consumer.log)"
        sql -c "SELECT mq.send('w7', jsonb_build_object('t', clock_timestamp(), 'warmup', 1))" >/dev/null ||
            die "W7 $side: could not send the warm-up message"
        for _ in $(seq 1 100); do
            [ "$(sql -c "SELECT count(*) FROM bench_latency WHERE side = 'warmup'")" = 1 ] && break
            sleep 0.1
        done
        [ "$(sql -c "SELECT count(*) FROM bench_latency WHERE side = 'warmup'")" = 1 ] ||
            die "W7 $side: the consumer did not receive the warm-up message within 10 s"
        wait_session "$app" "$ready" "W7 $side: the consumer did not go back to waiting"
        run_pgbench "W7-$side-producer" off 1 "$((N_W7 + 1))x" mq_w7_send.sql -D warmup=1
        wait_bg "$cpid" "$limit" "$app"
        crc=$?
        BG_PIDS=()
        [ "$crc" -ne 124 ] || die "W7 $side: the consumer had not received all $total messages after $limit s"
        if [ "$side" = floor ]; then
            [ "$crc" -eq 0 ] || { tail -n 5 "$OUT/W7-floor-consumer.log" >&2; die "W7 floor: the polling consumer failed (exit status $crc)"; }
        else
            check_pgbench "W7-mq-consumer" "$OUT/W7-mq-consumer.log" "$crc"
        fi
        sql -c "SELECT side, ms FROM bench_latency" >"$OUT/W7-$side-latencies.log"
        latency_stats "$lside"
        warm=$(sql -c "SELECT count(*) FROM bench_latency WHERE side = 'warmup'")
        [ "$LAT_N" = "$N_W7" ] && [ "$warm" = 2 ] ||
            die "W7 $side: $N_W7 + 2 warm-up messages sent, $LAT_N + $warm received (did a 5 s wait end with nothing?)"
        left=$(sql -c "SELECT ready + in_flight + delayed FROM mq.metrics('w7')") || die "W7: could not count messages"
        [ "$left" = 0 ] || die "W7 $side: $left messages left in queue w7"
        R[W7p50,$side]=$LAT_P50
        R[W7p99,$side]=$LAT_P99
        log "   $side: $LAT_N received, p50 $LAT_P50 ms, p99 $LAT_P99 ms"
        if [ "$side" = floor ]; then
            period=$(sed -n 's/.*W7 poller: mean poll period \([0-9.]*\) ms.*/\1/p' "$OUT/W7-floor-consumer.log")
            [ -n "$period" ] || die "W7 floor: the poller did not report its poll period"
            NOTES+=("W7 floor: the consumer polled every $period ms on average (pg_sleep(0.0009) + receive + commit)")
        fi
    done
    ROWS+=("W7p50|W7 wake-up p50 (ms) (floor: poll every ~1 ms)|ms")
    ROWS+=("W7p99|W7 wake-up p99 (ms) (floor: poll every ~1 ms)|ms")
    NOTES+=("W7: $N_W7 messages 5 ms apart; latency = commit (clock_timestamp() in the message) to the receive's return, synchronous_commit off")
    target "W7 p50 (ms)" "${R[W7p50,mq]}" "<" 1
fi

# W7n: latency from a committed send to its NOTIFY at a LISTENer, one
# message at a time, 10 ms apart (bench/listen.c latency: from
# clock_timestamp() read by the send's statement, just before its commit,
# as in W7, to the notification's arrival; one warm-up round not counted).
# No floor.
if want W7n; then
    log "== W7n: $N_W7N sends to queue bench, one at a time, 10 ms apart; time until LISTEN mq_bench hears it"
    prepare mq 0
    "${AS[@]}" "$DIR/listen" latency bench "$N_W7N" 10 </dev/null \
        >"$OUT/W7n-latencies.log" 2>"$OUT/W7n.log" ||
        { cat "$OUT/W7n.log" >&2; die "W7n: the notification latency run failed"; }
    awk '{ print "notify\t" $1 }' "$OUT/W7n-latencies.log" |
        sql_in -c "COPY bench_latency (side, ms) FROM STDIN" || die "W7n: could not load the latencies"
    latency_stats notify
    [ "$LAT_N" = "$N_W7N" ] || die "W7n: $N_W7N notifications wanted, $LAT_N measured"
    check_count W7n mq $((N_W7N + 1)) 0
    R[W7np50,mq]=$LAT_P50
    R[W7np99,mq]=$LAT_P99
    log "   p50 $LAT_P50 ms, p99 $LAT_P99 ms"
    ROWS+=("W7np50|W7n send commit -> NOTIFY p50 (ms), no floor|ms")
    ROWS+=("W7np99|W7n send commit -> NOTIFY p99 (ms), no floor|ms")
    NOTES+=("W7n: $N_W7N notifications 10 ms apart; latency = commit (clock_timestamp() in the send's statement) to the notification's arrival at the LISTENer")
    target "W7n p50 (ms)" "${R[W7np50,mq]}" "<" 50
fi

# start_holder TAG SECONDS: a session (application_name mq_bench_holder)
# opens a REPEATABLE READ transaction, takes its snapshot by reading a table
# and sleeps SECONDS, holding the xmin horizon; returns once its xmin is
# visible in pg_stat_activity (HELD_XMIN).  stop_holder TAG: end it, and die
# if it ended on its own before.
HELD_XMIN=
start_holder() {
    local tag=$1 secs=$2
    "${AS[@]}" PGAPPNAME=mq_bench_holder psql -X -q -c \
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM mq.queue_catalog; SELECT pg_sleep($secs);" \
        </dev/null >/dev/null 2>&1 &
    HOLDER_PID=$!
    HELD_XMIN=
    for _ in $(seq 1 100); do
        HELD_XMIN=$(sql -c "SELECT backend_xmin FROM pg_stat_activity WHERE application_name = 'mq_bench_holder' AND backend_xmin IS NOT NULL")
        [ -n "$HELD_XMIN" ] && return 0
        sleep 0.1
    done
    die "$tag: the REPEATABLE READ session did not start"
}
stop_holder() {
    local tag=$1 still
    still=$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mq_bench_holder' AND backend_xmin = '$HELD_XMIN'")
    sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mq_bench_holder'" >/dev/null
    wait "$HOLDER_PID" 2>/dev/null
    HOLDER_PID=
    [ "$still" = 1 ] || die "$tag: the REPEATABLE READ session ended before the measurement did"
}

# w8_run TAG SIDE SCRIPT: W2's transaction (SCRIPT) for T_W8 s, 4 clients,
# on a backlog of N_W8 with the horizon held; sets R[TAGfirst|last|all,SIDE]
# (tps of the first and last PROGRESS_W8 s, overall) and R[TAGkeep,SIDE]
# (last / own W2 sync off rate) when W2 ran.
w8_run() {
    local tag=$1 side=$2 script=$3 left first last
    local idx=mq.qi_bench read0 read1
    [ "$side" = floor ] && idx=floor_q_visible
    prepare "$side" "$N_W8"
    start_holder "$tag $side" $((T_W8 + 120))
    read0=$(sql -c "SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelid = '$idx'::regclass")
    run_pgbench "$tag-$side" off 4 "$T_W8" "$script" --progress="$PROGRESS_W8"
    stop_holder "$tag $side"
    # the stats of pgbench's sessions are flushed as they end
    sleep 0.5
    read1=$(sql -c "SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelid = '$idx'::regclass")
    NOTES+=("$tag $side: $(awk -v a="$read0" -v b="$read1" -v n="$NXACT" 'BEGIN { printf "%.1f", (b - a) / n }') entries of the queue's index read per transaction ($NXACT transactions)")
    left=$(count_msgs "$side")
    [ "$left" -gt 0 ] || [ "$SMOKE" -eq 1 ] || die "$tag $side: the backlog of $N_W8 ran dry"
    # progress lines: "progress: 10.0 s, 1234.5 tps, lat ..."
    first=$(awk '/^progress: / { print $4; exit }' "$OUT/$tag-$side.log")
    last=$(awk '/^progress: / { v = $4 } END { print v }' "$OUT/$tag-$side.log")
    [ -n "$first" ] && [ -n "$last" ] || die "$tag $side: no progress lines in $OUT/$tag-$side.log"
    R[${tag}first,$side]=$first
    R[${tag}last,$side]=$last
    R[${tag}all,$side]=$TPS
    if [ -n "${R[W2off,$side]:-}" ]; then
        R[${tag}keep,$side]=$(awk -v a="$last" -v b="${R[W2off,$side]}" 'BEGIN { printf "%.3f", a / b }')
    fi
    log "   $side: first ${PROGRESS_W8} s $first tps, last ${PROGRESS_W8} s $last tps, overall $TPS"
}

# hold_xmin TAG / release_xmin TAG: start_holder / stop_holder for the
# length of a W8-like run
hold_xmin() { start_holder "$1" $((T_W8 + 120)); }
release_xmin() { stop_holder "$1"; }

if want W8; then
    # W2 on a bigger backlog while another session holds a REPEATABLE READ
    # snapshot (and with it the xmin horizon) for the whole run.
    for side in floor mq; do
        log "== W8 $side: W2 for $T_W8 s on $N_W8 with a REPEATABLE READ transaction open"
        w8_run W8 "$side" "${side}_recv1.sql"
    done
    ROWS+=("W8first|W8 W2 + open RR xact: first ${PROGRESS_W8} s|tps")
    ROWS+=("W8last|W8 W2 + open RR xact: last ${PROGRESS_W8} s|tps")
    if [ -n "${R[W8keep,floor]:-}" ] && [ -n "${R[W8keep,mq]:-}" ]; then
        ROWS+=("W8keep|W8 last ${PROGRESS_W8} s / own W2 (sync off) rate|frac")
    else
        NOTES+=("W8: run W2 too for the fraction of the no-held-xmin W2 rate each side keeps")
    fi
fi

if want W8b; then
    # W8 on mq with blocking receives (wait => '1 s'); no floor.  Its own
    # rate: its first PROGRESS_W8 s.
    log "== W8b mq: W8 with receive(wait => '1 s') for $T_W8 s on $N_W8 with a REPEATABLE READ transaction open"
    w8_run W8b mq mq_recv1_wait.sql
    R[W8bkeep,mq]=$(ratio "${R[W8blast,mq]}" "${R[W8bfirst,mq]}")
    ROWS+=("W8bfirst|W8b W8 with wait => 1 s: first ${PROGRESS_W8} s, no floor|tps")
    ROWS+=("W8blast|W8b W8 with wait => 1 s: last ${PROGRESS_W8} s, no floor|tps")
    ROWS+=("W8bkeep|W8b last ${PROGRESS_W8} s / first ${PROGRESS_W8} s|frac")
    # a smoke run's backlog runs dry within its 3 s: no target then
    [ "$SMOKE" -eq 1 ] || target "W8b last/first" "${R[W8bkeep,mq]}" ">=" 0.8
fi

# W10: a soak.  2 producers (mq.send, 1 per transaction, synchronous_commit
# on: a send is durable when its commit returns) and 2 consumers (blocking
# receive of 1 + ack, 1 per transaction, synchronous_commit off: an ack lost
# in a crash is a redelivery; with it on, or with polling receives, the
# consumers of this 2-core machine do not keep up) run for T_W10 s while a
# REPEATABLE READ transaction holds the xmin horizon, then T_W10_AFTER s
# more after it ends.  Every SAMPLE_W10 s: messages sent and acked in the
# interval (mq.metrics totals), sizes of the queue's tables and indexes, dead
# tuples.  Producer rate of the last third of the held period / the first
# third (minute 3 / minute 1 of a full run).  No floor.
W10_PIDS_P=
W10_PIDS_C=
w10_ticks() {   # CPU ticks (utime + stime) of processes $@
    local p t=0
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
    done
    echo "$t"
}
# w10_sample: one line of 19 fields: epoch, sent, acked, queued, sizes of
# q_ w_ qi_ wk_ wi_ (bytes), dead tuples of q_ w_, holder sessions, WAL
# position (bytes), index entries read from qi_ wk_ wi_, heap blocks hit
# and read of q_ w_ (shared_blks), CPU ticks of the producers, consumers.
w10_sample() {
    local line
    line=$(sql -F ' ' -c "
SELECT round(extract(epoch FROM clock_timestamp())::numeric, 3), m.total_sent, m.total_acked,
       m.ready + m.in_flight + m.delayed,
       pg_relation_size('mq.q_bench'), pg_relation_size('mq.w_bench'),
       pg_relation_size('mq.qi_bench'), pg_relation_size('mq.wk_bench'), pg_relation_size('mq.wi_bench'),
       (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'mq.q_bench'::regclass),
       (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'mq.w_bench'::regclass),
       (SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mq_bench_holder'),
       pg_current_wal_insert_lsn() - '0/0',
       (SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelid = 'mq.qi_bench'::regclass),
       (SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelid = 'mq.wk_bench'::regclass),
       (SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelid = 'mq.wi_bench'::regclass),
       (SELECT sum(heap_blks_hit + heap_blks_read) FROM pg_statio_user_tables WHERE relid IN ('mq.q_bench'::regclass, 'mq.w_bench'::regclass))
  FROM mq.metrics('bench') m") || return 1
    # shellcheck disable=SC2086
    echo "$line $(w10_ticks $W10_PIDS_P) $(w10_ticks $W10_PIDS_C)"
}
# sleep_until EPOCH (seconds, fractional)
sleep_until() {
    local s
    s=$(awk -v t="$1" -v n="$(date +%s.%N)" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }')
    sleep "$s"
}
W10_CURVE=()
if want W10; then
    total=$((T_W10 + T_W10_AFTER))
    log "== W10 mq: soak, 2 producers + 2 consumers (wait => 1 s), $T_W10 s with a REPEATABLE READ transaction open, then $T_W10_AFTER s without; samples every $SAMPLE_W10 s"
    prepare mq 0
    start_holder W10 $((total + 120))
    "${AS[@]}" PGAPPNAME=mq_bench_w10_consumer PGOPTIONS="-c synchronous_commit=off" \
        pgbench -n -M prepared -c 2 -j 2 -T "$((total + 2))" -f "$DIR/scripts/mq_recv1_wait.sql" \
        </dev/null >"$OUT/W10-consumers.log" 2>&1 &
    cpid=$!
    BG_PIDS+=("$cpid")
    "${AS[@]}" PGAPPNAME=mq_bench_w10_producer PGOPTIONS="-c synchronous_commit=on" \
        pgbench -n -M prepared -c 2 -j 2 -T "$((total + 2))" -f "$DIR/scripts/mq_send.sql" \
        </dev/null >"$OUT/W10-producers.log" 2>&1 &
    ppid=$!
    BG_PIDS+=("$ppid")
    for app in mq_bench_w10_producer mq_bench_w10_consumer; do
        for _ in $(seq 1 100); do
            [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$app'")" = 2 ] && break
            sleep 0.05
        done
    done
    W10_PIDS_P=$(sql -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE application_name = 'mq_bench_w10_producer'")
    W10_PIDS_C=$(sql -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE application_name = 'mq_bench_w10_consumer'")
    t0=$(date +%s.%N)
    prev=$(w10_sample) || die "W10: sampling failed"
    echo "$prev" >"$OUT/W10-samples.log"
    k=0
    released=0
    while [ $(( (k + 1) * SAMPLE_W10 )) -le "$total" ]; do
        k=$((k + 1))
        sleep_until "$(awk -v a="$t0" -v b=$((k * SAMPLE_W10)) 'BEGIN { printf "%.3f", a + b }')"
        cur=$(w10_sample) || die "W10: sampling failed"
        echo "$cur" >>"$OUT/W10-samples.log"
        # phase of the interval that just ended: held or after
        phase=held
        [ "$released" -eq 1 ] && phase=after
        W10_CURVE+=("$((k * SAMPLE_W10)) $phase $prev $cur")
        prev=$cur
        if [ "$released" -eq 0 ] && [ $((k * SAMPLE_W10)) -ge "$T_W10" ]; then
            stop_holder W10
            released=1
            prev=$(w10_sample) || die "W10: sampling failed"
        fi
    done
    [ "$released" -eq 1 ] || stop_holder W10
    wait "$ppid"; prc=$?
    wait "$cpid"; crc=$?
    BG_PIDS=()
    check_pgbench W10-producers "$OUT/W10-producers.log" "$prc"
    nsent=$NXACT
    check_pgbench W10-consumers "$OUT/W10-consumers.log" "$crc"
    # every send committed is acked or still in the queue, nothing in flight
    read -r sent acked left inflight < <(sql -F ' ' -c "SELECT total_sent, total_acked, ready + in_flight + delayed, in_flight FROM mq.metrics('bench')")
    inq=$(sql -c "SELECT (SELECT count(*) FROM mq.q_bench) + (SELECT count(*) FROM mq.w_bench)")
    [ "$sent" = "$nsent" ] || die "W10: pgbench's producers committed $nsent sends, mq counted $sent"
    [ "$inflight" = 0 ] && [ "$inq" = "$left" ] && [ $((acked + left)) = "$sent" ] ||
        die "W10: $sent sent, $acked acked, $left left ($inq rows in the tables, $inflight in flight)"
    # per-interval lines: t, phase, producer and consumer msg/s, sizes (MB), dead tuples
    third=$((T_W10 / 3))
    # fields of a curve line: t phase, then the previous sample (20 fields,
    # from $3) and this one (from $22); see w10_sample
    w10_table=$(printf '%s\n' "${W10_CURVE[@]}" | awk -v third="$third" -v held="$T_W10" -v hz="$(getconf CLK_TCK)" '
        function mb(b) { return sprintf("%.1f", b / 1048576) }
        function per(x, n) { return n > 0 ? sprintf("%.1f", x / n) : "-" }
        {
            t = $1; ph = $2; dt = $22 - $3
            ns = $23 - $4; na = $24 - $5
            printf "%5d %-5s %7.0f %7.0f %6d %6s %6s %6s %6s %6s %8d %8d | %5s %4s %4s %4s %5s %4.0f %4.0f\n",
                t, ph, ns / dt, na / dt, $25, mb($26), mb($27), mb($28), mb($29), mb($30), $31, $32,
                per($34 - $15, ns), per($35 - $16, na), per($36 - $17, na), per($37 - $18, na),
                per($38 - $19, na), ($39 - $20) * 1e6 / hz / (ns > 0 ? ns : 1), ($40 - $21) * 1e6 / hz / (na > 0 ? na : 1)
            if (ph == "held" && t <= third) { fs += ns; ft += dt; fc += na }
            if (ph == "held" && t > held - third) { ls += ns; lt += dt; lc += na }
        }
        END { printf "SUMMARY %.1f %.1f %.1f %.1f\n", fs / ft, ls / lt, fc / ft, lc / lt }')
    read -r _ p_first p_last c_first c_last < <(grep '^SUMMARY' <<<"$w10_table")
    R[W10pfirst,mq]=$p_first
    R[W10plast,mq]=$p_last
    R[W10cfirst,mq]=$c_first
    R[W10clast,mq]=$c_last
    R[W10keep,mq]=$(ratio "$p_last" "$p_first")
    ROWS+=("W10pfirst|W10 soak, held xmin: producers, first ${third} s|tps")
    ROWS+=("W10plast|W10 soak, held xmin: producers, last ${third} s|tps")
    ROWS+=("W10cfirst|W10 soak, held xmin: consumers, first ${third} s|tps")
    ROWS+=("W10clast|W10 soak, held xmin: consumers, last ${third} s|tps")
    ROWS+=("W10keep|W10 producers last / first ${third} s|frac")
    [ "$SMOKE" -eq 1 ] || target "W10 producers last/first" "${R[W10keep,mq]}" ">=" 0.9
    W10_TABLE=$(grep -v '^SUMMARY' <<<"$w10_table")
    log "   producers: first ${third} s $p_first msg/s, last ${third} s $p_last msg/s; consumers $c_first, $c_last msg/s"
fi

# ------------------------------------------------- W11, W12, W13: scale

# cpu_ms PID...: CPU time those processes ran so far, ms (from
# /proc/PID/schedstat, in ns: finer than the 10 ms ticks of /proc/PID/stat)
cpu_ms() {
    local p v t=0
    for p in "$@"; do
        v=$(awk '{ printf "%d", $1 / 1000 }' "/proc/$p/schedstat" 2>/dev/null) || continue
        t=$((t + v))
    done
    echo $((t / 1000))
}
# pct MS SECONDS: MS of CPU over SECONDS as % of one core
pct() { awk -v m="$1" -v s="$2" 'BEGIN { printf "%.2f", m / (s * 10) }'; }

# create_queues PREFIX FROM TO [OPTIONS]: queues PREFIXFROM..PREFIXTO, one per statement
create_queues() {
    local i
    for i in $(seq "$2" "$3"); do echo "SELECT mq.create_queue('$1$i');"; done |
        sql_in >/dev/null || die "could not create queues $1$2..$1$3"
}
# drop_queues LIKE: every queue whose name is LIKE that, one per statement
drop_queues() {
    sql -c "SELECT 'SELECT mq.drop_queue(' || quote_literal(queue) || ');' FROM mq.queue_catalog WHERE queue LIKE '$1'" |
        sql_in >/dev/null || die "could not drop the queues $1"
}
worker_pid() { sql -c "SELECT pid FROM mq.workers WHERE database = 'bench'"; }
worker_passes() { sql -c "SELECT passes FROM mq.workers WHERE database = 'bench'"; }
# wait_passes N: the worker made N more passes (60 s at most)
wait_passes() {
    local p0 p
    p0=$(worker_passes)
    for _ in $(seq 1 600); do
        p=$(worker_passes)
        [ -n "$p" ] && [ -n "$p0" ] && [ "$p" -ge $((p0 + $1)) ] && return 0
        sleep 0.1
    done
    die "the worker made no $1 passes in 60 s"
}
# The named allocations of the main shared memory segment, row for row (mq's
# are all made at start and must not change); and the bytes PostgreSQL's
# shared hash tables took since start (<anonymous>: the lock table's
# elements, allocated at a peak of use and never given back, whatever mq does).
shmem_total() { sql -c "SELECT name || '=' || allocated_size FROM pg_shmem_allocations WHERE name IS NOT NULL AND name <> '<anonymous>' ORDER BY name" | md5sum; }
shmem_anonymous() { sql -c "SELECT allocated_size FROM pg_shmem_allocations WHERE name = '<anonymous>'"; }

# W11: many queues, few of them active.  The mix (send, then receive + ack
# in one transaction, on one of the active queues at random) runs first
# with the active queues alone (floor column), then with idle queues
# added up to the last point of the curve (mq column).  At each point of
# the curve the worker's cost with nothing to do: CPU of its process and
# transactions per pass (pg_stat_database.xact_commit).
if want W11; then
    log "== W11 setup: $W11_ACTIVE active queues"
    shm0=$(shmem_total) anon0=$(shmem_anonymous)
    create_queues w11_a_ 1 "$W11_ACTIVE"
    wait_passes 3
    log "== W11 floor: the mix on $W11_ACTIVE active queues alone, 4 clients"
    run_pgbench W11-active off 4 "$T_W11" mq_w11_mix.sql -D nq="$W11_ACTIVE"
    R[W11,floor]=$TPS
    log "   $TPS tps"
    W11_SINGLE=
    if [ "$SMOKE" -eq 0 ]; then
        log "== W11: the mix on one queue alone, 4 clients"
        run_pgbench W11-single off 4 "$T_W11" mq_w11_mix.sql -D nq=1
        W11_SINGLE=$TPS
        log "   $TPS tps"
    fi
    made=$W11_ACTIVE
    for n in $W11_CURVE; do
        log "== W11: $n queues in all (one create_queue per statement), $W11_ACTIVE of them active"
        t0=$SECONDS
        create_queues w11_i_ $((made + 1)) "$n"
        made=$n
        wait_passes 3
        log "   created, and the worker has seen them, in $((SECONDS - t0)) s"
        wpid=$(worker_pid)
        x0=$(sql -c "SELECT xact_commit FROM pg_stat_database WHERE datname = 'bench'")
        p0=$(worker_passes) c0=$(cpu_ms "$wpid")
        sleep "$W11_IDLE_SECS"
        c1=$(cpu_ms "$wpid") p1=$(worker_passes)
        x1=$(sql -c "SELECT xact_commit FROM pg_stat_database WHERE datname = 'bench'")
        cpu=$(pct $((c1 - c0)) "$W11_IDLE_SECS")
        # x1 - x0 counts 3 transactions of ours: the reads of x0, p0, p1
        xpp=$(awk -v x=$((x1 - x0 - 3)) -v p=$((p1 - p0)) 'BEGIN { printf "%.1f", (p > 0 ? x / p : x) }')
        NOTES+=("W11 curve: $n queues, none with work: worker $cpu % of a core, $xpp transactions per pass ($((p1 - p0)) passes in $W11_IDLE_SECS s)")
        log "   idle: worker $cpu % of a core, $xpp transactions per pass"
    done
    R[W11cpu,mq]=$cpu
    R[W11xpp,mq]=$xpp
    ROWS+=("W11cpu|W11 worker % of a core, $made idle queues|frac")
    ROWS+=("W11xpp|W11 transactions per worker pass, idle|frac")
    target "W11 worker % of a core, $made idle queues" "$cpu" "<" 1
    NOTES+=("target W11 transactions per pass, idle: a few (no per-queue transaction): $xpp")
    log "== W11 mq: the mix on $W11_ACTIVE active queues among $made, 4 clients"
    run_pgbench W11-many off 4 "$T_W11" mq_w11_mix.sql -D nq="$W11_ACTIVE"
    R[W11,mq]=$TPS
    log "   $TPS tps"
    ROWS+=("W11|W11 mix, $W11_ACTIVE active q (floor: alone; mq: among $made)|tps")
    target "W11 tps among $made / alone" "$(ratio "${R[W11,mq]}" "${R[W11,floor]}")" ">=" 0.9
    [ -z "$W11_SINGLE" ] ||
        NOTES+=("W11: the same mix on one queue alone: $(fmt "$W11_SINGLE" 0) tps (4 clients on one queue vs spread over $W11_ACTIVE)")
    log "== W11: dropping the $made queues (one drop_queue per statement)"
    drop_queues 'w11_%'
    wait_passes 2
    if [ "$(shmem_total)" = "$shm0" ]; then
        NOTES+=("W11: after creating, using and dropping $made queues, pg_shmem_allocations is as before, row for row (named allocations; PostgreSQL's shared hash tables took $(( $(shmem_anonymous) - anon0 )) bytes more of <anonymous>)")
    else
        die "W11: pg_shmem_allocations changed after the W11 queues were dropped"
    fi
fi

# W12: receive+ack and send with a big backlog against a small one (floor
# column: queue w12s, $N_W12_SMALL messages; mq column: queue w12b,
# $N_W12), the runs on the two queues alternating so that both meet the
# same machine (checkpoints, other load); and the size of a queue's tables
# per million messages.
if want W12; then
    log "== W12: queues of $N_W12_SMALL and $N_W12 messages, alternating runs: receive+ack (W2 mq), then send (W1 mq), 4 clients, sync off"
    prepare mq 0
    for q in w12s w12b; do
        sql -c "SELECT mq.drop_queue('$q')" -c "SELECT mq.create_queue('$q')" >/dev/null || die "W12: could not create $q"
    done
    t0=$SECONDS
    queue_top_up w12s "$N_W12_SMALL"
    queue_top_up w12b "$N_W12"
    sql -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null || die "vacuum/checkpoint failed"
    log "   loaded, vacuumed and checkpointed in $((SECONDS - t0)) s"
    sizes=$(sql -F ' ' -c "SELECT pg_relation_size('mq.q_w12b'), pg_indexes_size('mq.q_w12b'),
                                  pg_total_relation_size('mq.q_w12b')") || die "W12: no sizes"
    read -r heap idx tot <<<"$sizes"
    NOTES+=("W12: ready table per million messages ($N_W12 loaded, vacuumed): heap $(awk -v b="$heap" -v n="$N_W12" 'BEGIN { printf "%.0f", b / n }') MB, index $(awk -v b="$idx" -v n="$N_W12" 'BEGIN { printf "%.0f", b / n }') MB, total with TOAST $(awk -v b="$tot" -v n="$N_W12" 'BEGIN { printf "%.0f", b / n }') MB (payload: $PAYLOAD)")
    # receive+ack: a fixed number of transactions (8/10 of the small
    # backlog, so that it never runs dry), each queue topped up before
    # each run; W12_RECV_REPS runs on each, alternating, the median
    declare -A w12tps=()
    for rep in $(seq 1 "$W12_RECV_REPS"); do
        for qn in "w12s $N_W12_SMALL" "w12b $N_W12"; do
            read -r q n <<<"$qn"
            queue_top_up "$q" "$n"
            run_pgbench "W12-recv-$q-$rep" off 4 "$((N_W12_SMALL * 8 / 10 / 4))x" mq_w12_recv.sql -D q="$q"
            have=$(queue_count "$q")
            [ "$have" -eq $((n - NXACT)) ] || die "W12-recv-$q-$rep: $NXACT transactions should leave $((n - NXACT)) messages, $q holds $have"
            w12tps[recv,$q]+="$TPS "
        done
    done
    # send: W12_REPS runs of T_W11 s on each, alternating, each after a
    # checkpoint (neither pays for the other's dirty pages), the median
    for rep in $(seq 1 "$W12_REPS"); do
        for q in w12s w12b; do
            sql -c "CHECKPOINT" >/dev/null || die "W12: checkpoint failed"
            before=$(queue_count "$q")
            run_pgbench "W12-send-$q-$rep" off 4 "$T_W11" mq_w12_send.sql -D q="$q"
            have=$(queue_count "$q")
            [ "$have" -ge $((before + NXACT - 4)) ] && [ "$have" -le $((before + NXACT + 4)) ] ||
                die "W12-send-$q-$rep: $NXACT sends should make $((before + NXACT)) messages, $q holds $have"
            w12tps[send,$q]+="$TPS "
        done
    done
    for what in recv send; do
        for q in w12s w12b; do
            side=floor; [ "$q" = w12s ] || side=mq
            # shellcheck disable=SC2086  # the list of figures, one word each
            R[W12$what,$side]=$(median ${w12tps[$what,$q]})
            NOTES+=("W12: $what on $q: $(for v in ${w12tps[$what,$q]}; do printf '%s ' "$(fmt "$v" 0)"; done)tps")
        done
    done
    log "   receive+ack ${R[W12recv,floor]} / ${R[W12recv,mq]} tps, send ${R[W12send,floor]} / ${R[W12send,mq]} tps (medians; small / big)"
    sql -c "SELECT mq.drop_queue('w12s')" -c "SELECT mq.drop_queue('w12b')" >/dev/null || die "W12: could not drop its queues"
    ROWS+=("W12recv|W12 receive+ack, backlog $N_W12_SMALL (floor) / $N_W12|tps")
    ROWS+=("W12send|W12 send, backlog $N_W12_SMALL (floor) / $N_W12|tps")
    target "W12 receive+ack $N_W12 / $N_W12_SMALL" "$(ratio "${R[W12recv,mq]}" "${R[W12recv,floor]}")" ">=" 0.9
    target "W12 send $N_W12 / $N_W12_SMALL" "$(ratio "${R[W12send,mq]}" "${R[W12send,floor]}")" ">=" 0.9
fi

# W13: sessions blocked in mq.receive('w13', wait => '60 s') (pgbench
# clients, mq_w13_wait.sql), at each point of the curve: their CPU while
# nothing comes (all of them together, % of one core); then $N_W13 sends
# 20 ms apart: wake-up latency (commit -> receive returns) and the waiters'
# CPU per send, which is that of one look when a send wakes one waiter (the
# first point of the curve has one waiter); then $N_W13_BURST messages in
# one transaction: how many sessions got some, and when the last came.
if want W13; then
    sql -c "SELECT mq.create_queue('w13')" >/dev/null || die "W13: could not create queue w13"
    for nw in $W13_CURVE; do
        sql -c "SELECT mq.purge_queue('w13')" -c "TRUNCATE bench_latency" >/dev/null || die "W13: reset failed"
        log "== W13: $nw sessions blocked in receive(wait => '60 s')"
        "${AS[@]}" PGAPPNAME=mq_bench_w13 PGOPTIONS="-c synchronous_commit=off" \
            pgbench -n -c "$nw" -j 2 -T 100000 -f "$DIR/scripts/mq_w13_wait.sql" \
            </dev/null >"$OUT/W13-$nw-waiters.log" 2>&1 &
        wpid=$!
        BG_PIDS+=("$wpid")
        for _ in $(seq 1 300); do
            [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mq_bench_w13' AND wait_event_type = 'Extension'")" = "$nw" ] && break
            sleep 0.1
        done
        pids=$(sql -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'mq_bench_w13' AND wait_event_type = 'Extension'")
        [ "$(echo "$pids" | wc -w)" = "$nw" ] || die "W13: $nw waiters wanted, $(echo "$pids" | wc -w) waiting"
        sleep 1
        c0=$(cpu_ms $pids)
        sleep "$W13_IDLE_SECS"
        c1=$(cpu_ms $pids)
        idle=$(pct $((c1 - c0)) "$W13_IDLE_SECS")
        c0=$(cpu_ms $pids)
        run_pgbench "W13-$nw-producer" off 1 "$((N_W13 + 1))x" mq_w13_send.sql -D warmup=1
        for _ in $(seq 1 100); do
            [ "$(sql -c "SELECT count(*) FROM bench_latency WHERE side IN ('w13', 'warmup')")" = $((N_W13 + 1)) ] && break
            sleep 0.1
        done
        sleep 0.5
        c1=$(cpu_ms $pids)
        per=$(awk -v m=$((c1 - c0)) -v n=$((N_W13 + 1)) 'BEGIN { printf "%.3f", m / n }')
        latency_stats w13
        [ "$LAT_N" = "$N_W13" ] || die "W13: $N_W13 messages sent, $LAT_N received"
        t_burst=$(sql -c "SELECT count(mq.send('w13', jsonb_build_object('t', clock_timestamp(), 'side', 'w13burst')))
                           FROM generate_series(1, $N_W13_BURST)" >/dev/null && date +%s.%N)
        for _ in $(seq 1 300); do
            [ "$(sql -c "SELECT count(*) FROM bench_latency WHERE side LIKE 'w13burst%'")" = "$N_W13_BURST" ] && break
            sleep 0.1
        done
        burst=$(sql -F ' ' -c "SELECT count(*), count(DISTINCT side), round(max(ms)::numeric, 1) FROM bench_latency WHERE side LIKE 'w13burst%'")
        read -r bn bdistinct bmax <<<"$burst"
        [ "$bn" = "$N_W13_BURST" ] || die "W13: $N_W13_BURST messages sent in one transaction, $bn received"
        sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mq_bench_w13'" >/dev/null
        wait "$wpid" 2>/dev/null
        BG_PIDS=()
        left=$(sql -c "SELECT ready + in_flight + delayed FROM mq.metrics('w13')")
        [ "$left" = 0 ] || die "W13: $left messages left in queue w13"
        NOTES+=("W13 curve: $nw waiters: idle $idle % of a core (all of them); wake-up p50 $(fmt "$LAT_P50" 3) ms, p99 $(fmt "$LAT_P99" 3) ms; waiters' CPU per send $per ms; $N_W13_BURST in one transaction: received by $bdistinct sessions, the last $bmax ms after its send")
        log "   idle $idle %, p50 $LAT_P50 ms, p99 $LAT_P99 ms, CPU per send $per ms, burst: $bdistinct sessions, last after $bmax ms"
        R[W13idle,mq]=$idle
        R[W13p50,mq]=$LAT_P50
        R[W13p99,mq]=$LAT_P99
        R[W13per,mq]=$per
        [ "$nw" = 1 ] && R[W13per,floor]=$per
    done
    ROWS+=("W13idle|W13 $nw waiters, idle: % of a core|frac")
    ROWS+=("W13p50|W13 wake-up p50 (ms), $nw waiters|ms")
    ROWS+=("W13p99|W13 wake-up p99 (ms), $nw waiters|ms")
    ROWS+=("W13per|W13 waiters' CPU ms per send (floor: 1 waiter)|ms")
    target "W13 $nw waiters idle, % of a core" "$idle" "<" 1
    target "W13 wake-up p50 (ms), $nw waiters" "$LAT_P50" "<" 1
fi

if want WC; then
    # The clients' Worker, concurrency 4, empty handler, draining N_WC
    # messages (msg/s from its start to the last ack), each against a W2
    # run (receive 1 + ack per transaction, 4 clients, sync off, pgbench)
    # just before it: the "floor" column is that W2 rate, the ratio the
    # share of it the client reaches.
    PY=${MQ_PYTHON:-/usr/bin/python3}
    for client in py node; do
        if [ "$client" = py ]; then
            label="WC python Worker, conc 4, empty handler (floor: W2)"
            cmd=("$PY" "$BENCH_DIR/clients/worker.py" bench "$N_WC" 4)
            "$PY" -c 'import psycopg' >/dev/null 2>&1 || missing="python3 with psycopg 3 ($PY)"
        else
            label="WC node Worker, conc 4, empty handler (floor: W2)"
            cmd=(node "$BENCH_DIR/clients/worker.mjs" bench "$N_WC" 4)
            { command -v node >/dev/null && [ -d "$MQ_ROOT/clients/node/node_modules/pg" ]; } ||
                missing="node and clients/node/node_modules (npm ci in clients/node)"
        fi
        if [ -n "${missing:-}" ]; then
            case " $ONLY " in *" WC "*) die "WC $client: missing $missing" ;; esac
            NOTES+=("WC $client skipped: missing $missing")
            missing=
            continue
        fi
        log "== WC $client: W2-like pgbench run, then the $client Worker draining $N_WC messages"
        secs_wc=$([ "$SMOKE" -eq 1 ] && echo 2 || echo 10)
        prepare mq $((secs_wc * 40000 + 10000))
        run_pgbench "WC-$client-W2" off 4 "$secs_wc" mq_recv1.sql
        [ "$(count_msgs mq)" -gt 0 ] || die "WC $client: the W2 backlog ran dry"
        R[WC$client,floor]=$TPS
        prepare mq "$N_WC"
        "${AS[@]}" "${cmd[@]}" </dev/null >"$OUT/WC-$client.log" 2>&1
        rc=$?
        cat "$OUT/WC-$client.log" >&2
        [ "$rc" -eq 0 ] || die "WC $client: the worker failed (exit status $rc; see $OUT/WC-$client.log)"
        left=$(count_msgs mq)
        [ "$left" = 0 ] || die "WC $client: $left messages left after the worker acked $N_WC"
        R[WC$client,mq]=$(sed -n 's/.*: \([0-9]*\) msg\/s.*/\1/p' "$OUT/WC-$client.log")
        [ -n "${R[WC$client,mq]}" ] || die "WC $client: no rate in $OUT/WC-$client.log"
        ROWS+=("WC$client|$label|tps")
        cpu=$(sed -n 's/.*; cpu \([0-9.]*\) us\/msg.*/\1/p' "$OUT/WC-$client.log")
        [ -n "$cpu" ] && NOTES+=("WC $client: the worker process used $cpu us of CPU per message (user + system)")
        target "WC $client / W2" "$(ratio "${R[WC$client,mq]}" "${R[WC$client,floor]}")" ">=" 0.5
    done
    NOTES+=("WC: worker msg/s draining $N_WC messages (start to last ack) vs W2 (pgbench, 4 clients, sync off) just before it")
fi

if want W9; then
    # W2 (receive + ack, one per transaction, 4 consumers) on messages with
    # group keys, against W2 on the same backlog without: the floor column
    # is mq without groups (the two alternate, below).  Then with 10 groups: at most 10 messages in
    # flight (here at most 4, one per consumer).  Then with 1,000 groups
    # while a session holds the xmin horizon, as W8 (its rate against its
    # own rate without a held horizon).
    # w9_run TAG SECONDS BACKLOG [pgbench options]: run W2's script on mq;
    # TPS becomes messages consumed per second: with few groups a receive
    # can find every group's message taken (a transaction that consumes
    # nothing), so pgbench's transactions overcount.
    w9_run() {
        local tag=$1 secs=$2 backlog=$3 left consumed
        shift 3
        run_pgbench "$tag" off 4 "$secs" mq_recv1.sql "$@"
        left=$(count_msgs mq)
        if [ "$left" -eq 0 ]; then
            [ "$SMOKE" -eq 1 ] || die "$tag: the backlog of $backlog ran dry, the tps would be wrong"
        fi
        consumed=$((backlog - left))
        [ "$consumed" -le $((NXACT + 4)) ] ||
            die "$tag: $consumed messages consumed by $NXACT transactions of one receive each"
        [ "$consumed" -ge $((NXACT / 2)) ] || [ "$SMOKE" -eq 1 ] ||
            die "$tag: only $consumed messages consumed by $NXACT transactions"
        NOTES+=("$tag: $NXACT transactions, $consumed messages consumed ($((NXACT - consumed)) receives found nothing)")
        TPS=$(awk -v c="$consumed" -v s="$secs" 'BEGIN { printf "%.1f", c / s }')
    }
    # 1,000 groups against none: two queues loaded side by side, runs on
    # them alternating (ABBA...), each topped up to its backlog first, so
    # that both meet the same machine; the median rate of each
    log "== W9: W2 on $N_W9 messages in 1,000 groups against $N_W9 without groups, $W9_REPS alternating runs of $((T * 2 / W9_REPS)) s on each"
    prepare mq 0
    for q in w9p w9g; do
        sql -c "SELECT mq.drop_queue('$q')" -c "SELECT mq.create_queue('$q')" >/dev/null || die "W9: could not create $q"
    done
    t0=$SECONDS
    queue_top_up w9p "$N_W9"
    queue_top_up w9g "$N_W9" 1000
    sql -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null || die "vacuum/checkpoint failed"
    log "   loaded, vacuumed and checkpointed in $((SECONDS - t0)) s"
    have=$(sql -c "SELECT groups FROM mq.metrics('w9g')")
    [ "$have" = 1000 ] || [ "$SMOKE" -eq 1 ] || die "W9: loaded 1000 groups but w9g has $have"
    declare -A w9rates=()
    w9secs=$((T * 2 / W9_REPS)); [ "$w9secs" -ge 1 ] || w9secs=1
    for rep in $(seq 1 "$W9_REPS"); do
        order="w9p w9g"; [ $((rep % 2)) -eq 0 ] && order="w9g w9p"
        for q in $order; do
            groups=0; [ "$q" = w9g ] && groups=1000
            queue_top_up "$q" "$N_W9" "$groups"
            run_pgbench "W9-$q-$rep" off 4 "$w9secs" mq_w12_recv.sql -D q="$q"
            left=$(queue_count "$q")
            [ "$left" -gt 0 ] || [ "$SMOKE" -eq 1 ] || die "W9-$q-$rep: the backlog of $N_W9 ran dry, the tps would be wrong"
            consumed=$((N_W9 - left))
            [ "$consumed" -le $((NXACT + 4)) ] ||
                die "W9-$q-$rep: $consumed messages consumed by $NXACT transactions of one receive each"
            [ "$consumed" -ge $((NXACT / 2)) ] || [ "$SMOKE" -eq 1 ] ||
                die "W9-$q-$rep: only $consumed messages consumed by $NXACT transactions"
            w9rates[$q]+="$(awk -v c="$consumed" -v s="$w9secs" 'BEGIN { printf "%.1f", c / s }') "
        done
    done
    # shellcheck disable=SC2086  # the list of figures, one word each
    R[W9,floor]=$(median ${w9rates[w9p]}); R[W9g10,floor]=${R[W9,floor]}
    # shellcheck disable=SC2086
    R[W9,mq]=$(median ${w9rates[w9g]})
    NOTES+=("W9: no groups: $(for v in ${w9rates[w9p]}; do printf '%s ' "$(fmt "$v" 0)"; done)msg/s; 1000 groups: $(for v in ${w9rates[w9g]}; do printf '%s ' "$(fmt "$v" 0)"; done)msg/s (alternating runs of $w9secs s, medians in the table)")
    log "   no groups ${R[W9,floor]}, 1000 groups ${R[W9,mq]} messages/s (medians)"
    sql -c "SELECT mq.drop_queue('w9p')" -c "SELECT mq.drop_queue('w9g')" >/dev/null || die "W9: could not drop its queues"

    log "== W9 10 groups: W2 on $N_W9 messages in 10 groups"
    prepare_grouped "$N_W9" 10
    w9_run W9-g10 "$T" "$N_W9"
    R[W9g10,mq]=$TPS
    log "   10 groups: $TPS tps"
    N_W9H=$((N_W9 * 3))
    log "== W9 held: W2 for $T_W8 s on $N_W9H messages in 1,000 groups with a REPEATABLE READ transaction open"
    prepare_grouped "$N_W9H" 1000
    hold_xmin "W9 held"
    w9_run W9-held "$T_W8" "$N_W9H" --progress="$PROGRESS_W8"
    release_xmin "W9 held"
    R[W9first,mq]=$(awk '/^progress: / { print $4; exit }' "$OUT/W9-held.log")
    R[W9last,mq]=$(awk '/^progress: / { v = $4 } END { print v }' "$OUT/W9-held.log")
    [ -n "${R[W9first,mq]}" ] && [ -n "${R[W9last,mq]}" ] || die "W9 held: no progress lines in $OUT/W9-held.log"
    R[W9keep,mq]=$(awk -v a="${R[W9last,mq]}" -v b="${R[W9,mq]}" 'BEGIN { printf "%.3f", a / b }')
    log "   held: first ${PROGRESS_W8} s ${R[W9first,mq]} tps, last ${PROGRESS_W8} s ${R[W9last,mq]} tps"
    ROWS+=("W9|W9 W2, 1000 groups (floor: no groups)|tps")
    ROWS+=("W9g10|W9 W2, 10 groups (floor: no groups)|tps")
    ROWS+=("W9first|W9 1000 groups + open RR xact: first ${PROGRESS_W8} s|tps")
    ROWS+=("W9last|W9 1000 groups + open RR xact: last ${PROGRESS_W8} s|tps")
    ROWS+=("W9keep|W9 last ${PROGRESS_W8} s / own W9 (1000 groups) rate|frac")
    NOTES+=("W9: receive + ack, 1 per transaction, 4 consumers, sync off; $N_W9 messages ($N_W9H with the RR transaction), message i in group i mod G; floor column = the same on messages without a group key; W9 rates are messages consumed per second (first/last 10 s: pgbench transactions/s)")
    target "W9 1000 groups / no groups" "$(ratio "${R[W9,mq]}" "${R[W9,floor]}")" ">=" 0.8
    target "W9 held, last / own rate" "${R[W9keep,mq]}" ">=" 0.8
fi

# ------------------------------------------------------------------ table

{
    echo "mq bench ($([ "$SMOKE" -eq 1 ] && echo "SMOKE run, ${T} s per workload: numbers are not meaningful" || echo "full run, ${T} s per workload, W8 ${T_W8} s"))"
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); PostgreSQL $PG_VERSION; $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)"
    echo "shared_buffers 1GB; pg_test_fsync fdatasync: $FDATASYNC ops/sec (bounds sync-on commit rates)"
    echo
    printf '%-52s %12s %12s %9s\n' "workload" "floor" "mq" "mq/floor"
    printf '%-52s %12s %12s %9s\n' "--------" "-----" "--" "--------"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r key label kind <<<"$row"
        f=${R[$key,floor]:-}; m=${R[$key,mq]:-}
        case $kind in
            tps)
                printf '%-52s %12s %12s %9s\n' "$label" "$(fmt "$f" 0)" "$(fmt "$m" 0)" "$(ratio "$m" "$f")" ;;
            cost)
                printf '%-52s %12s %12s %9s\n' "$label" "$(fmt "$f" 0)" "$(fmt "$m" 0)" "$(ratio "$f" "$m")" ;;
            ms)
                printf '%-52s %12s %12s %9s\n' "$label" "$(fmt "$f" 3)" "$(fmt "$m" 3)" "$(ratio "$m" "$f")" ;;
            frac)
                printf '%-52s %12s %12s %9s\n' "$label" "$(fmt "$f" 2)" "$(fmt "$m" 2)" "" ;;
        esac
    done
    echo
    echo "tps = pgbench transactions/s (W3, W4: 100 messages per transaction)."
    if want W6 || want W6b; then
        echo "[cost]: floor and mq columns are tps; the last column is the cost per transaction,"
        echo "  mq / floor = floor tps / mq tps (lower is better).  W6: 1 publish making 10 copies vs"
        echo "  10 mq.send in one statement; W6b: 1 publish delivering nothing vs 1 mq.send."
    fi
    want W1n && echo "W1n: floor column = mq with mq.notify = off; medians of 2 runs each."
    want W7 && echo "W7: floor column = mq.receive without wait, polled every ~1 ms."
    for n in "${NOTES[@]}"; do echo "note: $n"; done
    if [ -n "${W10_TABLE:-}" ]; then
        echo
        echo "W10 curve: in each ${SAMPLE_W10} s interval ending at t ('held': the REPEATABLE READ"
        echo "  transaction was open; 'after': it had ended): messages sent and acked per second; at t:"
        echo "  messages queued, sizes (MB), dead tuples; per message (sent, or acked) in the interval:"
        echo "  WAL bytes, index entries read from qi_ wk_ wi_, heap blocks of q_ + w_ accessed,"
        echo "  CPU microseconds of the producer and consumer backends"
        printf '%5s %-5s %7s %7s %6s %6s %6s %6s %6s %6s %8s %8s | %5s %4s %4s %4s %5s %4s %4s\n' \
            t phase sent/s acked/s queued q_ w_ qi_ wk_ wi_ dead_q dead_w \
            WAL/m qi/m wk/m wi/m blk/m P_us C_us
        echo "$W10_TABLE"
    fi
} >"$OUT/table.txt"

mkdir -p "$BENCH_DIR/results" && cp "$OUT/table.txt" "$BENCH_DIR/results/latest.txt" ||
    log "bench: could not write $BENCH_DIR/results/latest.txt"
echo
cat "$OUT/table.txt"
exit 0
