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
#   --smoke     every workload for ~2 s on tiny backlogs (< 1 minute in all);
#               exit status 0 only if every pgbench run was clean
#   --only L    run only the workloads of the comma-separated list L
#               (W1 W2 W3 W4 W5 W8; W6 and W7 are not implemented yet)
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
        -h|--help) sed -n '2,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
ALL_WORKLOADS="W1 W2 W3 W4 W5 W6 W7 W8"
ONLY=$(echo "$ONLY" | tr ',a-z' ' A-Z')
for w in $ONLY; do
    case " $ALL_WORKLOADS " in *" $w "*) ;; *) echo "bench: unknown workload '$w' in --only" >&2; exit 2 ;; esac
done
want() { [ -z "$ONLY" ] || case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if [ "$SMOKE" -eq 1 ]; then
    T=2             # seconds per pgbench run
    T_W8=3
    PROGRESS_W8=1   # W8: tps of the first and last interval of this length
    N_W2=2000       # backlogs
    N_W4=20000
    N_W8=3000
    W5_RATE=200     # W5: total producer rate, messages/s
    FSYNC_SECS=1
else
    T=${MQ_BENCH_T:-20}
    T_W8=60
    PROGRESS_W8=10
    N_W2=${MQ_BENCH_N_W2:-1200000}
    N_W4=${MQ_BENCH_N_W4:-6000000}
    N_W8=${MQ_BENCH_N_W8:-2000000}
    W5_RATE=1000
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
max_connections = 50
# no checkpoint in the middle of a measurement: run.sh checkpoints before each
max_wal_size = 16GB
min_wal_size = 1GB
checkpoint_timeout = 1h
# pgbench sets it per run (PGOPTIONS); this is for loading and bookkeeping
synchronous_commit = off
log_min_messages = warning
log_checkpoints = off
EOF
"${AS[@]}" pg_ctl -D "$DATA" -l "$DIR/server.log" -w -t 60 start </dev/null >/dev/null 2>&1 ||
    { tail -n 30 "$DIR/server.log" >&2; die "the cluster did not start"; }
STARTED=1

# psql as the cluster's user; -c or stdin
sql() { "${AS[@]}" psql -X -q -At -v ON_ERROR_STOP=1 "$@" </dev/null; }
sql_in() { "${AS[@]}" psql -X -q -At -v ON_ERROR_STOP=1; }

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
            # batches of 10000, one transaction each
            local left=$n k
            while [ "$left" -gt 0 ]; do
                k=$(( left > 10000 ? 10000 : left ))
                echo "SELECT count(*) FROM mq.send_batch('bench', array_fill('$PAYLOAD'::jsonb, ARRAY[$k]));"
                left=$((left - k))
            done | sql_in >/dev/null || die "loading mq failed"
        fi
    fi
    sql -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null || die "vacuum/checkpoint failed"
    [ "$n" -eq 0 ] || log "   loaded, vacuumed and checkpointed in $((SECONDS - t0)) s"
    local have
    have=$(count_msgs "$side")
    [ "$have" = "$n" ] || die "$side: loaded $n messages but the queue holds $have"
}

# Messages in the queue of side $1 (ready, in flight or delayed).
count_msgs() {
    if [ "$1" = floor ]; then
        sql -c "SELECT count(*) FROM floor_q"
    else
        sql -c "SELECT ready + in_flight + delayed FROM mq.metrics('bench')"
    fi
}

# ------------------------------------------------------------- pgbench run

# run_pgbench TAG SYNC CLIENTS SECONDS SCRIPT [pgbench options...]
# Sets TPS and NXACT; dies on any error.  Output in $OUT/TAG.log.
run_pgbench() {
    local tag=$1 sync=$2 clients=$3 secs=$4 script=$5
    shift 5
    local out=$OUT/$tag.log
    "${AS[@]}" PGOPTIONS="-c synchronous_commit=$sync" \
        pgbench -n -M prepared -c "$clients" -j 2 -T "$secs" --progress=5 \
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
ROWS=()        # "key|label|kind"  kind: tps, ms, frac, na
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

# ------------------------------------------------------------- workloads

log "== PostgreSQL $PG_VERSION, $(nproc) cores, $([ "$SMOKE" -eq 1 ] && echo smoke || echo full) run"

if want W1; then
    workload_tps W1off "W1 send, 1/xact, 4 clients, sync off" off 4 "$T" send 0 1 1
    workload_tps W1on "W1 send, 1/xact, 4 clients, sync on" on 4 "$T" send 0 1 1
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

want W6 && ROWS+=("W6|W6 topics (publish/subscribe)|na")
want W7 && ROWS+=("W7|W7 blocking receive|na")

if want W8; then
    # W2 on a bigger backlog while another session holds a REPEATABLE READ
    # snapshot (and with it the xmin horizon) for the whole run.
    for side in floor mq; do
        log "== W8 $side: W2 for $T_W8 s on $N_W8 with a REPEATABLE READ transaction open"
        prepare "$side" "$N_W8"
        "${AS[@]}" PGAPPNAME=mq_bench_holder psql -X -q -c \
            "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1; SELECT pg_sleep($((T_W8 + 120)));" \
            </dev/null >/dev/null 2>&1 &
        HOLDER_PID=$!
        held=
        for _ in $(seq 1 100); do
            held=$(sql -c "SELECT backend_xmin FROM pg_stat_activity WHERE application_name = 'mq_bench_holder' AND backend_xmin IS NOT NULL")
            [ -n "$held" ] && break
            sleep 0.1
        done
        [ -n "$held" ] || die "W8 $side: the REPEATABLE READ session did not start"
        run_pgbench "W8-$side" off 4 "$T_W8" "${side}_recv1.sql" --progress="$PROGRESS_W8"
        still=$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mq_bench_holder' AND backend_xmin = '$held'")
        sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mq_bench_holder'" >/dev/null
        wait "$HOLDER_PID" 2>/dev/null
        HOLDER_PID=
        [ "$still" = 1 ] || die "W8 $side: the REPEATABLE READ session ended before pgbench did"
        left=$(count_msgs "$side")
        [ "$left" -gt 0 ] || [ "$SMOKE" -eq 1 ] || die "W8 $side: the backlog of $N_W8 ran dry"
        # progress lines: "progress: 10.0 s, 1234.5 tps, lat ..."
        first=$(awk '/^progress: / { print $4; exit }' "$OUT/W8-$side.log")
        last=$(awk '/^progress: / { v = $4 } END { print v }' "$OUT/W8-$side.log")
        [ -n "$first" ] && [ -n "$last" ] || die "W8 $side: no progress lines in $OUT/W8-$side.log"
        R[W8first,$side]=$first
        R[W8last,$side]=$last
        R[W8all,$side]=$TPS
        if [ -n "${R[W2off,$side]:-}" ]; then
            R[W8keep,$side]=$(awk -v a="$last" -v b="${R[W2off,$side]}" 'BEGIN { printf "%.3f", a / b }')
        fi
        log "   $side: first ${PROGRESS_W8} s $first tps, last ${PROGRESS_W8} s $last tps, overall $TPS"
    done
    ROWS+=("W8first|W8 W2 + open RR xact: first ${PROGRESS_W8} s|tps")
    ROWS+=("W8last|W8 W2 + open RR xact: last ${PROGRESS_W8} s|tps")
    if [ -n "${R[W8keep,floor]:-}" ] && [ -n "${R[W8keep,mq]:-}" ]; then
        ROWS+=("W8keep|W8 last ${PROGRESS_W8} s / own W2 (sync off) rate|frac")
    else
        NOTES+=("W8: run W2 too for the fraction of the no-held-xmin W2 rate each side keeps")
    fi
fi

# ------------------------------------------------------------------ table

{
    echo "mq bench ($([ "$SMOKE" -eq 1 ] && echo "SMOKE run, ${T} s per workload: numbers are not meaningful" || echo "full run, ${T} s per workload, W8 ${T_W8} s"))"
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); PostgreSQL $PG_VERSION; $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)"
    echo "shared_buffers 1GB; pg_test_fsync fdatasync: $FDATASYNC ops/sec (bounds sync-on commit rates)"
    echo
    printf '%-44s %12s %12s %9s\n' "workload" "floor" "mq" "mq/floor"
    printf '%-44s %12s %12s %9s\n' "--------" "-----" "--" "--------"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r key label kind <<<"$row"
        case $kind in
            na)
                printf '%-44s %s\n' "$label" "n/a (not implemented)" ;;
            tps)
                f=${R[$key,floor]}; m=${R[$key,mq]}
                printf '%-44s %12s %12s %9s\n' "$label" "$(fmt "$f" 0)" "$(fmt "$m" 0)" "$(ratio "$m" "$f")" ;;
            ms)
                f=${R[$key,floor]}; m=${R[$key,mq]}
                printf '%-44s %12s %12s %9s\n' "$label" "$(fmt "$f" 3)" "$(fmt "$m" 3)" "$(ratio "$m" "$f")" ;;
            frac)
                f=${R[$key,floor]}; m=${R[$key,mq]}
                printf '%-44s %12s %12s %9s\n' "$label" "$(fmt "$f" 2)" "$(fmt "$m" 2)" "" ;;
        esac
    done
    echo
    echo "tps = pgbench transactions/s (W3, W4: 100 messages per transaction)."
    for n in "${NOTES[@]}"; do echo "note: $n"; done
} >"$OUT/table.txt"

mkdir -p "$BENCH_DIR/results" && cp "$OUT/table.txt" "$BENCH_DIR/results/latest.txt" ||
    log "bench: could not write $BENCH_DIR/results/latest.txt"
echo
cat "$OUT/table.txt"
exit 0
