# tools/common.sh: helpers shared by tools/test.sh and tools/demo.sh.
# Sourced after tools/deps.sh (needs PG_CONFIG); expects MQ_ROOT to be set.

# Environment of the caller that must not leak into the test clusters.
# make variables (MAKEFLAGS carries a jobserver we are not part of).
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS
# libpq connection variables (PGHOST, PGPORT, PGDATABASE, ...); PG_CONFIG
# and friends contain an underscore and are kept.
for _mq_v in $(compgen -e); do
    case $_mq_v in PG[A-Z]*) [[ $_mq_v == *_* ]] || unset "$_mq_v" ;; esac
done
unset _mq_v
# One locale everywhere, so expected output does not depend on the machine
# (C.UTF-8 is built into glibc >= 2.35, i.e. always present on Debian 12).
export LANG=C.UTF-8
unset LC_ALL LANGUAGE LC_CTYPE LC_COLLATE LC_MESSAGES LC_MONETARY LC_NUMERIC LC_TIME

if [ "$(id -u)" -eq 0 ]; then MQ_IS_ROOT=1; else MQ_IS_ROOT=0; fi

mq_section() { printf '\n===== %s (at %ds) =====\n' "$*" "$SECONDS"; }

# make in the repository with the chosen pg_config.
mq_make() { make -C "$MQ_ROOT" --no-print-directory PG_CONFIG="$PG_CONFIG" "$@"; }

# The value of a variable of the Makefile (uses the print-% helper target).
mq_var() { mq_make -s "print-$1" 2>/dev/null; }

mq_build() {
    mq_section "build"
    mq_make -j"$(nproc 2>/dev/null || echo 2)" all
}

# Install, as root.  As another user: install if the target directories are
# writable, accept an installation identical to the build, otherwise print
# the sudo command to run and fail.
mq_install() {
    mq_section "install"
    if [ "$MQ_IS_ROOT" -eq 1 ]; then
        mq_make install
        return
    fi
    local pkglibdir extdir
    pkglibdir=$("$PG_CONFIG" --pkglibdir)
    extdir=$("$PG_CONFIG" --sharedir)/extension
    if [ -w "$pkglibdir" ] && [ -w "$extdir" ]; then
        mq_make install
        return
    fi
    local ext module f stale=
    ext=$(mq_var EXTENSION)
    module=$(mq_var MODULE_big)
    [ -n "$module" ] || module=$(mq_var MODULES)
    for f in $module; do
        cmp -s "$MQ_ROOT/$f.so" "$pkglibdir/$f.so" || stale=1
    done
    for f in $ext; do
        cmp -s "$MQ_ROOT/$f.control" "$extdir/$f.control" || stale=1
    done
    for f in $(mq_var DATA); do
        cmp -s "$MQ_ROOT/$f" "$extdir/$(basename "$f")" || stale=1
    done
    if [ -z "$stale" ]; then
        echo "install: $pkglibdir is not writable, but the installed files match the build"
        return 0
    fi
    echo "install: $pkglibdir is not writable by $(id -un); run:" >&2
    echo "sudo make -C $(printf %q "$MQ_ROOT") install PG_CONFIG=$(printf %q "$PG_CONFIG")"
    return 1
}

# MQ_USER: who runs initdb, pg_regress and the TAP tests.  root may not, so
# root uses the postgres OS user if there is one, or else a user mqtest
# (created if need be).  MQ_TEST_USER=name overrides the choice.
mq_pick_user() {
    if [ "$MQ_IS_ROOT" -eq 0 ]; then
        MQ_USER=$(id -un)
        return 0
    fi
    if [ -n "${MQ_TEST_USER:-}" ]; then
        MQ_USER=$MQ_TEST_USER
    elif id -u postgres >/dev/null 2>&1; then
        MQ_USER=postgres
    else
        MQ_USER=mqtest
    fi
    if ! id -u "$MQ_USER" >/dev/null 2>&1; then
        if [ "$MQ_USER" != mqtest ]; then
            echo "no OS user $MQ_USER" >&2
            return 1
        fi
        echo "creating OS user mqtest to run the tests"
        useradd --system --user-group --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin mqtest || return 1
    fi
    if [ "$(id -u "$MQ_USER")" -eq 0 ]; then
        echo "$MQ_USER is root; PostgreSQL refuses to run as root" >&2
        return 1
    fi
}

# MQ_AS: command prefix that runs a program as MQ_USER with a clean
# environment: HOME and TMPDIR inside $1 (a directory MQ_USER owns), PATH
# with the PostgreSQL bindir first.  Use as: "${MQ_AS[@]}" prog args...
# shellcheck disable=SC2034  # MQ_AS is used by the sourcing scripts
mq_set_as() {
    local home=$1
    local -a envv=(HOME="$home/home" TMPDIR="$home/tmp" PATH="$PATH"
                   LANG="$LANG" PG_CONFIG="$PG_CONFIG" PG_BINDIR="$PG_BINDIR"
                   PGXS_DIR="$PGXS_DIR")
    mkdir -p "$home/home" "$home/tmp"
    if [ "$MQ_IS_ROOT" -eq 1 ]; then
        chown -R "$MQ_USER:" "$home" || return 1
        MQ_AS=(runuser -u "$MQ_USER" -- env "${envv[@]}")
    else
        MQ_AS=(env "${envv[@]}")
    fi
}

# Stop every postmaster whose data directory is below $1 (left behind by a
# killed or timed-out run) and wait for it to go away.
mq_stop_postgres_under() {
    local dir=$1 pidfile pid datadir
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    while IFS= read -r pidfile; do
        pid=$(head -n 1 "$pidfile" 2>/dev/null)
        [[ $pid =~ ^[0-9]+$ ]] || continue
        kill -0 "$pid" 2>/dev/null || continue
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ] || continue
        datadir=$(dirname "$pidfile")
        echo "stopping leftover postmaster $pid ($datadir)" >&2
        kill -QUIT "$pid" 2>/dev/null # immediate shutdown
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done < <(find "$dir" -name postmaster.pid -type f 2>/dev/null)
    return 0
}

# Copy the source tree (without .git and test output) to $2.
mq_copy_tree() {
    local src=$1 dst=$2
    mkdir -p "$dst" &&
    tar -C "$src" --exclude=./.git --exclude=./results --exclude='./tmp_check*' \
        --exclude=./output_iso --exclude=./log --exclude='./regression.*' \
        -cf - . | tar -C "$dst" --no-same-owner -xf -
}
