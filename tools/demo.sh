#!/usr/bin/env bash
# tools/demo.sh: what `make demo` runs.
#
# Installs what building needs (tools/deps.sh build), builds and installs mq,
# then, as an unprivileged user (root: postgres, or a created user mqtest),
# initdb's a throwaway cluster in a temporary directory, starts it on a free
# port of 127.0.0.1 (socket in the same directory) with
# shared_preload_libraries = 'mq', runs CREATE EXTENSION mq and
# examples/demo.sql with psql, and stops and removes the cluster again, also
# when something fails or the script is interrupted.
#
#   bash tools/demo.sh [--example]
#
#   --example     what `make example` runs: also installs what the client
#                 examples need (tools/deps.sh example: python3-psycopg,
#                 nodejs, npm, npm ci in clients/node), starts the cluster
#                 the same way with CREATE EXTENSION mq, and leaves it
#                 running: prints the PG* variables to use and the command
#                 that stops and removes it ($DIR/stop.sh)
#   MQ_DEMO_PORT  first port to try (default 54321)

set -u -o pipefail

MQ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$MQ_ROOT/tools/deps.sh"
. "$MQ_ROOT/tools/common.sh"

DEMO_SQL=$MQ_ROOT/examples/demo.sql
DIR=
DATA=
STARTED=0
EXAMPLE=0
KEEP=0
case ${1:-} in
    --example) EXAMPLE=1 ;;
    '') ;;
    *) echo "usage: demo.sh [--example]" >&2; exit 2 ;;
esac

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ "$KEEP" -eq 1 ]; then
        exit "$rc"
    fi
    if [ "$STARTED" -eq 1 ] && [ -f "$DATA/postmaster.pid" ]; then
        mq_section "stopping the demo cluster"
        "${MQ_AS[@]}" pg_ctl -D "$DATA" -m fast -w -t 60 stop </dev/null ||
            "${MQ_AS[@]}" pg_ctl -D "$DATA" -m immediate -w -t 30 stop </dev/null
    fi
    if [ -n "$DIR" ]; then
        mq_stop_postgres_under "$DIR"
        rm -rf "$DIR"
    fi
    if [ "$rc" -eq 0 ]; then echo "demo: done"; else echo "demo: FAILED (exit status $rc)" >&2; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT TERM HUP

die() { echo "demo: $*" >&2; exit 1; }

# Is something listening on 127.0.0.1:$1?  (bash's /dev/tcp; ss may be absent)
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mq_section "dependencies"
if [ "$EXAMPLE" -eq 1 ]; then
    mq_deps example || exit 1
else
    mq_deps build || exit 1
fi
[ -f "$DEMO_SQL" ] || die "$DEMO_SQL does not exist"

mq_build || die "build failed"
mq_install || die "install failed"
mq_pick_user || die "could not get an unprivileged user"

DIR=$(mktemp -d /tmp/mq-demo-XXXXXX) || die "mktemp failed"
DATA=$DIR/data
mkdir -p "$DIR/examples"
cp -R "$MQ_ROOT/examples/." "$DIR/examples/"
mq_set_as "$DIR" || die "could not hand $DIR to $MQ_USER"
chmod 755 "$DIR"

mq_section "initdb ($DATA, as $MQ_USER)"
"${MQ_AS[@]}" initdb -D "$DATA" -U postgres -A trust -E UTF8 --no-sync </dev/null \
    >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log"; die "initdb failed"; }
echo "include_if_exists = 'demo.conf'" >>"$DATA/postgresql.conf"
echo "ok"

# Try ports from MQ_DEMO_PORT upward; a port taken between the check and
# the start makes pg_ctl fail, and then the next one is tried.
port=${MQ_DEMO_PORT:-54321}
for attempt in $(seq 1 20); do
    while port_in_use "$port" || [ -e "$DIR/.s.PGSQL.$port" ]; do port=$((port + 1)); done
    cat >"$DATA/demo.conf" <<EOF
# written by tools/demo.sh (included from postgresql.conf)
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
shared_preload_libraries = 'mq'
EOF
    mq_section "starting PostgreSQL on 127.0.0.1:$port"
    STARTED=1
    if "${MQ_AS[@]}" pg_ctl -D "$DATA" -l "$DIR/server.log" -w -t 60 start </dev/null; then
        break
    fi
    STARTED=0
    mq_stop_postgres_under "$DIR"
    if [ "$attempt" -eq 20 ] || ! grep -q 'could not bind\|Address already in use' "$DIR/server.log" 2>/dev/null; then
        tail -n 40 "$DIR/server.log" 2>/dev/null
        die "the server did not start"
    fi
    echo "port $port is taken, trying the next one"
    port=$((port + 1))
done

PSQL=("${MQ_AS[@]}" psql -X -v ON_ERROR_STOP=1 -h "$DIR" -p "$port" -U postgres -d postgres)

mq_section "CREATE EXTENSION mq"
"${PSQL[@]}" -e -c 'CREATE EXTENSION mq' </dev/null || { tail -n 40 "$DIR/server.log"; die "CREATE EXTENSION failed"; }

if [ "$EXAMPLE" -eq 1 ]; then
    # Leave the cluster running; stop.sh stops and removes it.
    {
        echo "#!/usr/bin/env bash"
        echo "# written by tools/demo.sh --example: stop and remove the example cluster"
        printf '%q ' "${MQ_AS[@]}" pg_ctl -D "$DATA" -m fast -w -t 60 stop
        echo
        printf 'rm -rf %q\n' "$DIR"
    } >"$DIR/stop.sh"
    chmod 755 "$DIR/stop.sh"
    KEEP=1
    mq_section "the example cluster is running"
    cat <<EOF
PostgreSQL with mq on 127.0.0.1:$port (socket directory $DIR), user postgres
(trust authentication), database postgres; server log $DIR/server.log.

Use it from this shell with:

export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres

then, from $MQ_ROOT (README, "From your language"):

PYTHONPATH=clients/python python3 examples/python/producer.py hello 3
node examples/node/producer.mjs hello 3
node examples/node/consumer.mjs hello            # until Ctrl-C

Stop and remove it with:

bash $DIR/stop.sh
EOF
    exit 0
fi

mq_section "examples/demo.sql"
(cd "$DIR/examples" && "${PSQL[@]}" -e -f demo.sql </dev/null) ||
    { tail -n 40 "$DIR/server.log"; die "examples/demo.sql failed"; }
