#!/usr/bin/env bash
# tools/test.sh: what `make test` runs.
#
# Installs what is missing (tools/deps.sh), builds and installs mq, then runs
# as an unprivileged user (root: postgres, or a created user mqtest) in a
# copy of the tree under /tmp/mq-test-XXXXXX:
#   1. pg_regress      the Makefile's REGRESS list (`make installcheck`,
#                      with its REGRESS_OPTS: temp instance + test/mq.conf)
#   2. isolation       every test/isolation/specs/*.spec
#   3. TAP             prove over every test/t/*.pl (with MQ_SRCDIR, the
#                      copy, and MQ_REPO_ROOT, this tree: the copy has no
#                      .git, and t/021_upgrade.pl builds mq 0.1 from git
#                      history)
#   4. python client   clients/python/tests/run.py (unittest) with
#                      Debian's python3 and psycopg 3; the tests start
#                      their own temporary cluster
#   5. node client     clients/node/test/run.mjs (node --test) with
#                      Debian's node and clients/node/node_modules (npm ci,
#                      tools/deps.sh); the tests start their own temporary
#                      cluster
#   6. bench smoke     bash bench/run.sh --smoke, if bench/run.sh exists
# Counted: one per pg_regress test, one per isolation spec, one per TAP
# assertion, one per Python or Node client test, one for the bench smoke (a
# failing build/install counts as one failure).  The last line printed is "N passed, M failed"; the exit status
# is 0 only if M = 0 and N > 0.
#
# Environment knobs:
#   PG_CONFIG               default /usr/lib/postgresql/15/bin/pg_config
#   MQ_TEST_TIMEOUT         seconds per suite / per TAP file (default 1800)
#   MQ_BENCH_SMOKE_TIMEOUT  seconds for the bench smoke (default 900)
#   MQ_KEEP_TMP=1           keep the /tmp/mq-test-XXXXXX work directory
#   MQ_TEST_USER            OS user for the suites when run as root
#                           (default: postgres if it exists, else mqtest)
#   TEMP_CONFIG             passed on to the TAP tests if set (appended to
#                           every PostgreSQL::Test::Cluster node's config)
#   MQ_PYTHON               python for the client tests (default /usr/bin/python3)
#   MQ_SUITES               suites to run (default "regress isolation tap python node bench");
#                           for a quick look while developing, not for CI
#   MQ_ONLY                 names of the tests to run inside those suites
#                           (pg_regress tests, specs, TAP files without .pl);
#                           default: all

set -u -o pipefail

MQ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$MQ_ROOT/tools/deps.sh"
. "$MQ_ROOT/tools/common.sh"

TIMEOUT=${MQ_TEST_TIMEOUT:-1800}
BENCH_TIMEOUT=${MQ_BENCH_SMOKE_TIMEOUT:-900}

PASSED=0
FAILED=0
WORK=

finish() {
    trap - EXIT INT TERM HUP
    if [ -n "$WORK" ]; then
        mq_stop_postgres_under "$WORK"
        if [ "${MQ_KEEP_TMP:-0}" = 1 ]; then
            echo "kept work directory $WORK" >&2
        else
            rm -rf "$WORK"
        fi
    fi
    echo "$PASSED passed, $FAILED failed"
    if [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]; then exit 0; fi
    exit 1
}
trap finish EXIT
trap 'echo "test: interrupted" >&2; FAILED=$((FAILED + 1)); exit 1' INT TERM HUP

# A step before the test suites failed: count it and stop.
setup_failed() {
    echo "test: $*" >&2
    FAILED=$((FAILED + 1))
    exit 1
}

# Print the first $2 lines of file $1 under a heading, if it has any.
show_head() {
    [ -s "$1" ] || return 0
    echo "----- $1 (first $2 lines) -----"
    head -n "$2" "$1"
    echo "----- end of $1 -----"
}
show_tail() {
    [ -s "$1" ] || return 0
    echo "----- $1 (last $2 lines) -----"
    tail -n "$2" "$1"
    echo "----- end of $1 -----"
}

# count_pg_regress LOG RC SUITE TEST...: one result per test name from
# pg_regress output ("test NAME ... ok|FAILED|failed (ignored)"; tests of a
# parallel group are indented instead of prefixed by "test").  A test with
# no result line did not run and counts as failed; so does a non-zero exit
# of pg_regress when every test passed.  Sets SUITE_PASS, SUITE_FAIL.
count_pg_regress() {
    local log=$1 rc=$2 suite=$3 name line
    shift 3
    SUITE_PASS=0
    SUITE_FAIL=0
    for name in "$@"; do
        line=$(grep -E "^(test +| +)$name +\.\.\. " "$log" | tail -n 1)
        if [[ $line =~ \.\.\.\ +ok([[:space:]]|$) ]]; then
            SUITE_PASS=$((SUITE_PASS + 1))
        elif [ -n "$line" ]; then
            SUITE_FAIL=$((SUITE_FAIL + 1))
        else
            echo "$suite: $name: no result (did not run)"
            SUITE_FAIL=$((SUITE_FAIL + 1))
        fi
    done
    if [ "$rc" -ne 0 ] && [ "$SUITE_FAIL" -eq 0 ]; then
        echo "$suite: exited with status $rc although every test passed"
        SUITE_FAIL=1
    fi
    echo "$suite: $SUITE_PASS passed, $SUITE_FAIL failed"
    PASSED=$((PASSED + SUITE_PASS))
    FAILED=$((FAILED + SUITE_FAIL))
}

# pg_regress stops at the first test without an expected file ("diff command
# failed"), so give such tests an empty one in the work copy: they fail
# alone, and regression.diffs shows their whole output.
# usage: add_missing_expected EXPECTED_DIR TEST...
add_missing_expected() {
    local dir=$1 name
    shift
    for name in "$@"; do
        if [ ! -e "$dir/$name.out" ]; then
            echo "note: ${dir#"$T"/}/$name.out does not exist; $name will fail, its output is in the diffs"
            "${MQ_AS[@]}" mkdir -p "$dir" && "${MQ_AS[@]}" touch "$dir/$name.out"
        fi
    done
}

# Postmaster and initdb logs of a pg_regress temp instance (in OUTPUTDIR/log).
show_instance_logs() {
    if [ -s "$1/log/postmaster.log" ]; then
        show_tail "$1/log/postmaster.log" 60
    else
        show_tail "$1/log/initdb.log" 40
    fi
}

# --- setup -----------------------------------------------------------------

mq_section "dependencies"
mq_deps test || setup_failed "missing dependencies (see above)"
echo "PG_CONFIG=$PG_CONFIG ($("$PG_CONFIG" --version))"

mq_build || setup_failed "build failed"
mq_install || setup_failed "install failed"

mq_pick_user || setup_failed "could not get an unprivileged user"
WORK=$(mktemp -d /tmp/mq-test-XXXXXX) || setup_failed "mktemp failed"
T=$WORK/mq            # copy of the tree, where the suites run
OUT=$WORK/out         # logs of this script
mq_copy_tree "$MQ_ROOT" "$T" || setup_failed "could not copy the tree to $T"
mkdir -p "$OUT"
mq_set_as "$WORK" || setup_failed "could not hand $WORK to $MQ_USER"
chmod 755 "$WORK"
echo "running the suites as $MQ_USER in $T"

# timeout(1) signals its whole process group; -k: SIGKILL if that is ignored.
TO=(timeout -k 30)

# --- 1. pg_regress -----------------------------------------------------------

SUITES=${MQ_SUITES:-regress isolation tap python node bench}
# wanted SUITE [NAME]: whether MQ_SUITES / MQ_ONLY select it
wanted() {
    [[ " $SUITES " == *" $1 "* ]] || return 1
    [ -z "${2:-}" ] || [ -z "${MQ_ONLY:-}" ] || [[ " $MQ_ONLY " == *" $2 "* ]]
}

mq_section "pg_regress"
REGRESS_LIST=$(mq_var REGRESS) || setup_failed "could not read REGRESS from the Makefile"
REGRESS_TESTS=()
wanted regress && for name in $REGRESS_LIST; do
    wanted regress "$name" && REGRESS_TESTS+=("$name")
done
if [ "${#REGRESS_TESTS[@]}" -eq 0 ]; then
    echo "pg_regress: REGRESS is empty, skipped"
else
    echo "tests (REGRESS of the Makefile): ${REGRESS_TESTS[*]}"
    # The README as a tested document (issue 17): sql/readme.sql must be what
    # tools/readme-sql.py makes of README.md, and every result the README
    # shows must be in expected/readme.out.  Counted as one test.
    if [[ " ${REGRESS_TESTS[*]} " == *" readme "* ]]; then
        if python3 "$MQ_ROOT/tools/readme-sql.py" --check; then
            PASSED=$((PASSED + 1))
        else
            echo "pg_regress: README.md and sql/readme.sql / expected/readme.out disagree (see above)"
            FAILED=$((FAILED + 1))
        fi
    fi
    add_missing_expected "$T/expected" "${REGRESS_TESTS[@]}"
    "${TO[@]}" "$TIMEOUT" "${MQ_AS[@]}" make -C "$T" --no-print-directory \
        installcheck PG_CONFIG="$PG_CONFIG" ISOLATION= TAP_TESTS= </dev/null 2>&1 | tee "$OUT/regress.log"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 124 ] && echo "pg_regress: timed out after ${TIMEOUT}s"
    mq_stop_postgres_under "$T"
    count_pg_regress "$OUT/regress.log" "$rc" pg_regress "${REGRESS_TESTS[@]}"
    if [ "$SUITE_FAIL" -gt 0 ]; then
        show_head "$T/regression.diffs" 200
        show_instance_logs "$T"
    fi
fi

# --- 2. isolation ----------------------------------------------------------

mq_section "isolation"
shopt -s nullglob
SPECS=("$T"/test/isolation/specs/*.spec)
shopt -u nullglob
if [ "${#SPECS[@]}" -eq 0 ]; then
    echo "isolation: no test/isolation/specs/*.spec, skipped"
elif ! wanted isolation; then
    echo "isolation: not selected (MQ_SUITES), skipped"
else
    ISO_TESTS=()
    for s in "${SPECS[@]}"; do
        s=${s##*/}
        wanted isolation "${s%.spec}" && ISO_TESTS+=("${s%.spec}")
    done
    # The specs share one database; CREATE EXTENSION is done once by
    # --load-extension, unless the specs create it themselves.
    ISO_OPTS=()
    if ! grep -qiE 'create[[:space:]]+extension[[:space:]]+("?mq"?)([[:space:];]|$)' "${SPECS[@]}"; then
        ISO_OPTS+=(--load-extension=mq)
    fi
    echo "specs: ${ISO_TESTS[*]}"
    add_missing_expected "$T/test/isolation/expected" "${ISO_TESTS[@]}"
    "${TO[@]}" "$TIMEOUT" "${MQ_AS[@]}" \
        "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
        --temp-instance="$T/tmp_check_iso" \
        --temp-config="$T/test/mq.conf" \
        --inputdir="$T/test/isolation" \
        --outputdir="$T/output_iso" \
        --bindir="$PG_BINDIR" \
        --dbname=isolation_regression \
        "${ISO_OPTS[@]}" "${ISO_TESTS[@]}" </dev/null 2>&1 | tee "$OUT/isolation.log"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 124 ] && echo "isolation: timed out after ${TIMEOUT}s"
    mq_stop_postgres_under "$T"
    count_pg_regress "$OUT/isolation.log" "$rc" isolation "${ISO_TESTS[@]}"
    if [ "$SUITE_FAIL" -gt 0 ]; then
        show_head "$T/output_iso/regression.diffs" 200
        show_instance_logs "$T/output_iso"
    fi
fi

# --- 3. TAP ----------------------------------------------------------------

mq_section "TAP"
shopt -s nullglob
TAPS=("$T"/test/t/*.pl)
shopt -u nullglob
if [ "${#TAPS[@]}" -eq 0 ]; then
    echo "TAP: no test/t/*.pl, skipped"
elif ! wanted tap; then
    echo "TAP: not selected (MQ_SUITES), skipped"
else
    # As prove_installcheck of $(pgxs)/src/Makefile.global does for PGXS,
    # with test/ as the suite's source directory (it holds t/).
    TAP_ENV=(TESTDIR="$T/test" PGPORT=65432
             PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress"
             PERL5LIB="$PGXS_DIR/src/test/perl${PERL5LIB:+:$PERL5LIB}"
             MQ_SRCDIR="$T" MQ_REPO_ROOT="$MQ_ROOT")
    [ -n "${TEMP_CONFIG:-}" ] && TAP_ENV+=(TEMP_CONFIG="$TEMP_CONFIG")
    rm -rf "$T/test/tmp_check"
    TAP_PASS=0
    TAP_FAIL=0
    for t in "${TAPS[@]}"; do
        name=${t##*/}
        name=${name%.pl}
        wanted tap "$name" || continue
        log=$OUT/tap_$name.log
        (cd "$T/test" && "${TO[@]}" "$TIMEOUT" "${MQ_AS[@]}" "${TAP_ENV[@]}" \
            prove -v -I "$PGXS_DIR/src/test/perl/" -I . "t/$name.pl") \
            </dev/null 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        [ "$rc" -eq 124 ] && echo "TAP: t/$name.pl timed out after ${TIMEOUT}s"
        mq_stop_postgres_under "$T/test"
        # Top-level TAP lines only (subtest lines are indented): "ok N",
        # "not ok N" (a "# TODO" failure is not a failure), plan "1..N".
        read -r p f seen plan < <(awk '
            /^ok [0-9]+/      { p++; s++ }
            /^not ok [0-9]+/  { s++; if ($0 !~ /# *TODO/) f++ }
            /^1\.\.[0-9]+/    { split($0, a, /[. ]+/); plan = a[2] }
            END { printf "%d %d %d %d\n", p, f, s, plan }' "$log")
        if [ "$plan" -gt "$seen" ]; then
            echo "TAP: t/$name.pl: planned $plan, ran $seen: $((plan - seen)) counted as failed"
            f=$((f + plan - seen))
        fi
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "TAP: t/$name.pl: prove exited with status $rc"
            f=1
        fi
        echo "TAP: t/$name.pl: $p passed, $f failed"
        TAP_PASS=$((TAP_PASS + p))
        TAP_FAIL=$((TAP_FAIL + f))
        if [ "$f" -gt 0 ]; then
            show_tail "$T/test/tmp_check/log/regress_log_$name" 100
            for nl in "$T/test/tmp_check/log/${name}"_*.log; do
                [ -f "$nl" ] && show_tail "$nl" 40
            done
        fi
    done
    echo "TAP: $TAP_PASS passed, $TAP_FAIL failed"
    PASSED=$((PASSED + TAP_PASS))
    FAILED=$((FAILED + TAP_FAIL))
fi

# mq_count_client NAME RC: add the counts of a client suite's last line
# "NAME client tests: N passed, M failed" (in $OUT/NAME.log) to the totals;
# no such line, or a failing exit status RC with no failure counted, is a
# failure.
mq_count_client() {
    local name=$1 rc=$2 line p f
    line=$(grep -E "^$name client tests: [0-9]+ passed, [0-9]+ failed\$" "$OUT/$name.log" | tail -n 1)
    if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        p=${BASH_REMATCH[1]}
        f=${BASH_REMATCH[2]}
    else
        echo "$name: no result line (exit status $rc)"
        p=0
        f=1
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    echo "$name client: $p passed, $f failed"
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
}

# --- 4. Python client -------------------------------------------------------

mq_section "python client"
if [ ! -f "$T/clients/python/tests/run.py" ]; then
    echo "python: no clients/python/tests/run.py, skipped"
elif ! wanted python; then
    echo "python: not selected (MQ_SUITES), skipped"
else
    (cd "$T" && "${TO[@]}" "$TIMEOUT" "${MQ_AS[@]}" PYTHONPATH="$T/clients/python" \
        PYTHONDONTWRITEBYTECODE=1 "${MQ_PYTHON:-/usr/bin/python3}" clients/python/tests/run.py) \
        </dev/null 2>&1 | tee "$OUT/python.log"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 124 ] && echo "python: timed out after ${TIMEOUT}s"
    mq_stop_postgres_under "$WORK/tmp"
    mq_count_client python "$rc"
fi

# --- 5. Node client ---------------------------------------------------------

mq_section "node client"
if [ ! -f "$T/clients/node/test/run.mjs" ]; then
    echo "node: no clients/node/test/run.mjs, skipped"
elif ! wanted node; then
    echo "node: not selected (MQ_SUITES), skipped"
else
    (cd "$T/clients/node" && "${TO[@]}" "$TIMEOUT" "${MQ_AS[@]}" node test/run.mjs) \
        </dev/null 2>&1 | tee "$OUT/node.log"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 124 ] && echo "node: timed out after ${TIMEOUT}s"
    mq_stop_postgres_under "$WORK/tmp"
    mq_count_client node "$rc"
fi

# --- 6. bench smoke --------------------------------------------------------

mq_section "bench smoke"
if [ ! -f "$T/bench/run.sh" ]; then
    echo "bench: no bench/run.sh, skipped"
elif ! wanted bench; then
    echo "bench: not selected (MQ_SUITES), skipped"
else
    # bench/run.sh keeps its cluster under our own work directory, so that
    # what a killed run leaves behind is ours to clean up, and nobody else's
    # benchmark is touched.
    (cd "$T" && "${TO[@]}" "$BENCH_TIMEOUT" "${MQ_AS[@]}" env MQ_BENCH_TMPDIR="$WORK" \
        bash bench/run.sh --smoke) </dev/null 2>&1 | tee "$OUT/bench.log"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 124 ] && echo "bench: timed out after ${BENCH_TIMEOUT}s"
    mq_stop_postgres_under "$WORK"
    if [ "$rc" -eq 0 ]; then
        echo "bench smoke: passed"
        PASSED=$((PASSED + 1))
    else
        echo "bench smoke: FAILED (exit status $rc)"
        FAILED=$((FAILED + 1))
    fi
fi

mq_section "summary"
exit 0   # finish (the EXIT trap) cleans up and prints "N passed, M failed"
