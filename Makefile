# mq: PGXS build of the message queue extension.
#
# Layout: C sources in src/, the install script in sql/ beside the
# regression inputs (PostgreSQL 15's pg_regress reads sql/X.sql and
# expected/X.out from one input directory, and DATA has to find the install
# script somewhere; keeping both in sql/ is what pg_cron does), isolation
# specs in test/isolation, TAP tests in test/t.

EXTENSION = mq
MODULE_big = mq
PGFILEDESC = "mq - message queues for PostgreSQL"
OBJS = \
	src/util.o \
	src/shmem.o \
	src/deliveries.o \
	src/catalog.o \
	src/wait.o \
	src/launcher.o \
	src/notify.o \
	src/xact.o \
	src/plans.o \
	src/insert.o \
	src/group.o \
	src/take.o \
	src/retry.o \
	src/promote.o \
	src/counters.o \
	src/queues.o \
	src/send.o \
	src/receive.o \
	src/ack.o \
	src/deadletter.o \
	src/topics.o \
	src/privileges.o \
	src/metrics.o \
	src/maintain.o \
	src/ddl.o \
	src/worker.o \
	src/mq.o

DATA = sql/mq--0.1.sql sql/mq--0.2.sql sql/mq--0.1--0.2.sql

REGRESS = queues send receive ack_nack deadletter metrics errors topics privileges limits nulls failing groups rowpaths readme
REGRESS_OPTS = --temp-config=$(srcdir)/test/mq.conf --temp-instance=tmp_check_regress --inputdir=$(srcdir)

PG_CONFIG ?= pg_config
PG_CFLAGS += -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers -Wno-clobbered -Werror

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild everything when one changes.
$(OBJS): $(wildcard src/*.h)

# The two commands of the README.  Both install what is missing first.
.PHONY: demo test bench demo-ha example
demo:
	@bash $(srcdir)/tools/demo.sh

# A cluster with mq left running for the client examples (README, "From
# your language"); prints the PG* variables to use and how to stop it.
example:
	@bash $(srcdir)/tools/demo.sh --example

# A failover drill on pg_auto_failover (README, "High availability"); run
# by hand, not part of `make test`.
demo-ha:
	@bash $(srcdir)/tools/demo-ha.sh

test:
	@bash $(srcdir)/tools/test.sh

bench:
	@bash $(srcdir)/bench/run.sh

# ---------------------------------------------------------------------------
# Helpers for tools/*.sh and .ci/run (appended after the rules above).

# On a machine with only postgresql-15, `pg_config --pgxs` names a file that
# postgresql-server-dev-15 has not installed yet, and the include above
# fails.  GNU make first tries to remake a missing included makefile, so
# this rule lets `make test` / `make demo` install it (tools/deps.sh: as
# root; otherwise it prints the sudo command to run) and then carry on.
ifneq ($(PGXS),)
ifeq ($(wildcard $(PGXS)),)
$(PGXS):
	@bash $(dir $(firstword $(MAKEFILE_LIST)))tools/deps.sh $(if $(filter test,$(MAKECMDGOALS)),test,build)
endif
endif

# `make -s print-REGRESS` prints the value of REGRESS (tools/test.sh takes
# the list of pg_regress tests from there).
print-%:
	@echo '$($*)'
