#!/usr/bin/env bash
# tools/deps.sh: check for, and as root install, what building and testing mq
# needs on Debian 12 with the postgresql-15 package.
#
#   bash tools/deps.sh [build|test|example]   run directly (default: test = all)
#   . tools/deps.sh && mq_deps build   from the other scripts
#
# build: compiling and installing mq; example: build plus what the
# client examples need (python3 with psycopg 3, nodejs and npm, and
# clients/node/node_modules); test: all of that plus the test tools.
#
# What is missing is found by looking for files (pg_config, pgxs.mk,
# pg_regress, ..., pgtap.control, IPC::Run), never by guessing.  As root
# the missing packages are installed with apt-get (after one `apt-get
# update`); otherwise the exact sudo command is printed and the check fails.
# For test and example, `npm ci` then installs clients/node's dependencies
# from its package-lock.json into clients/node/node_modules (ignored by
# git), unless that is already up to date.
#
# On success these are set and exported:
#   PG_CONFIG   (default /usr/lib/postgresql/15/bin/pg_config; /usr/bin/pg_config
#                can be libpq-dev's, which knows nothing about PGXS)
#   PG_BINDIR   $(pg_config --bindir), put first in PATH
#   PGXS_DIR    $(pg_config --pkglibdir)/pgxs

MQ_PG_MAJOR=15

# Packages that are missing for $1 (build|test), one per line.
mq_deps_missing() {
    local what=$1 pkglibdir includedir sharedir
    local server_dev=postgresql-server-dev-$MQ_PG_MAJOR
    if [ ! -x "$PG_CONFIG" ]; then
        # /usr/lib/postgresql/15/bin/pg_config comes with postgresql-client-15,
        # a dependency of the server-dev package.
        echo "$server_dev"
        pkglibdir=/usr/lib/postgresql/$MQ_PG_MAJOR/lib
        includedir=/usr/include/postgresql/$MQ_PG_MAJOR/server
        sharedir=/usr/share/postgresql/$MQ_PG_MAJOR
    else
        pkglibdir=$("$PG_CONFIG" --pkglibdir)
        includedir=$("$PG_CONFIG" --includedir-server)
        sharedir=$("$PG_CONFIG" --sharedir)
        local f need=
        for f in "$pkglibdir/pgxs/src/makefiles/pgxs.mk" \
                 "$pkglibdir/pgxs/src/test/regress/pg_regress" \
                 "$pkglibdir/pgxs/src/test/isolation/pg_isolation_regress" \
                 "$pkglibdir/pgxs/src/test/isolation/isolationtester" \
                 "$pkglibdir/pgxs/src/test/perl/PostgreSQL/Test/Cluster.pm" \
                 "$pkglibdir/pgxs/src/test/perl/PostgreSQL/Test/Utils.pm" \
                 "$includedir/postgres.h"; do
            [ -e "$f" ] || need=1
        done
        [ -z "$need" ] || echo "$server_dev"
    fi
    command -v make >/dev/null 2>&1 || echo make
    command -v gcc >/dev/null 2>&1 || echo gcc
    [ -e /usr/include/stdio.h ] || echo libc6-dev
    if [ "$what" = test ]; then
        { command -v perl && command -v prove; } >/dev/null 2>&1 || echo perl
        if ! command -v perl >/dev/null 2>&1 || ! perl -MIPC::Run -e 1 >/dev/null 2>&1; then
            echo libipc-run-perl
        fi
        [ -e "$sharedir/extension/pgtap.control" ] || echo "postgresql-$MQ_PG_MAJOR-pgtap"
    fi
    if [ "$what" = test ] || [ "$what" = example ]; then
        # the Python client (clients/python) uses Debian's python3 with
        # psycopg 3; the Node client (clients/node) node and npm
        if [ ! -x "${MQ_PYTHON:-/usr/bin/python3}" ]; then
            echo python3
            echo python3-psycopg
        elif ! "${MQ_PYTHON:-/usr/bin/python3}" -c 'import psycopg' >/dev/null 2>&1; then
            echo python3-psycopg
        fi
        command -v node >/dev/null 2>&1 || echo nodejs
        command -v npm >/dev/null 2>&1 || echo npm
    fi
}

# clients/node/node_modules from clients/node/package-lock.json (`npm ci`),
# unless npm's record of the last install there is newer than the lock file.
mq_node_modules() {
    local dir
    dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/clients/node
    [ -f "$dir/package-lock.json" ] || return 0
    local major
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || major=0
    if [ "$major" -lt 18 ]; then
        echo "deps: node $(node --version 2>/dev/null) is too old for clients/node (18 or later)" >&2
        return 1
    fi
    if [ -d "$dir/node_modules/pg" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
        return 0
    fi
    echo "deps: npm ci in $dir"
    if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error); then
        echo "deps: npm ci failed in $dir (it needs the npm registry)" >&2
        return 1
    fi
}

mq_deps() {
    local what=${1:-test}
    case $what in build|test|example) ;; *) echo "usage: deps.sh [build|test|example]" >&2; return 2;; esac

    PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$MQ_PG_MAJOR/bin/pg_config}
    case $PG_CONFIG in
        */*) ;;
        *) PG_CONFIG=$(command -v "$PG_CONFIG" || echo "/nonexistent/$PG_CONFIG") ;;
    esac

    local -a missing
    mapfile -t missing < <(mq_deps_missing "$what")
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "deps: missing packages: ${missing[*]}" >&2
            echo "deps: as a user with sudo rights, run:" >&2
            echo "sudo apt-get install -y ${missing[*]}"
            echo "deps: (if apt cannot find them, run 'sudo apt-get update' first)" >&2
            return 1
        fi
        echo "deps: installing ${missing[*]}"
        local -a apt_opts=(-o DPkg::Lock::Timeout=300 -o APT::Get::Assume-Yes=true)
        if ! DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update -q \
            || ! DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q "${missing[@]}"
        then
            echo "deps: apt-get failed" >&2
            return 1
        fi
        mapfile -t missing < <(mq_deps_missing "$what")
        if [ "${#missing[@]}" -gt 0 ]; then
            echo "deps: still missing after apt-get install (for PG_CONFIG=$PG_CONFIG): ${missing[*]}" >&2
            return 1
        fi
    fi

    local pgxs
    pgxs=$("$PG_CONFIG" --pgxs 2>/dev/null) || pgxs=
    if [ -z "$pgxs" ] || [ ! -f "$pgxs" ]; then
        echo "deps: $PG_CONFIG has no PGXS makefile (${pgxs:-none}); use the versioned pg_config, e.g. PG_CONFIG=/usr/lib/postgresql/$MQ_PG_MAJOR/bin/pg_config" >&2
        return 1
    fi
    local version
    version=$("$PG_CONFIG" --version)
    case $version in
        "PostgreSQL $MQ_PG_MAJOR".*|"PostgreSQL $MQ_PG_MAJOR") ;;
        *) echo "deps: warning: $PG_CONFIG reports '$version', mq targets PostgreSQL $MQ_PG_MAJOR" >&2 ;;
    esac
    if [ "$what" = test ] || [ "$what" = example ]; then
        mq_node_modules || return 1
    fi
    PG_BINDIR=$("$PG_CONFIG" --bindir)
    PGXS_DIR=$("$PG_CONFIG" --pkglibdir)/pgxs
    PATH=$PG_BINDIR:$PATH
    export PG_CONFIG PG_BINDIR PGXS_DIR PATH
    return 0
}

# Run directly (not sourced).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    mq_deps "$@" || exit 1
    echo "deps: all present (PG_CONFIG=$PG_CONFIG)"
fi
