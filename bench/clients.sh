#!/usr/bin/env bash
# bench/clients.sh: the clients' Worker against W2, = bash bench/run.sh --only WC
# (pass --smoke for a quick run).  Environment: as bench/run.sh.
exec bash "$(dirname "${BASH_SOURCE[0]}")/run.sh" --clients "$@"
