#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the fleet store's tests
# (crates/store), without systemd: a cluster initialised with initdb in a
# directory under /tmp, run by pg_ctl as the `postgres` user (or as the
# calling user when that is not root), listening only on 127.0.0.1 and on a
# Unix socket inside that directory.
#
# It creates a role `cpumodel_test` that logs in with a password
# (scram-sha-256 over TCP) and may create databases: each store test creates
# its own database and drops it afterwards, so tests run in parallel.
#
# Prints one line for the caller's shell, on standard output:
#   export CPUMODEL_TEST_POSTGRES=postgres://cpumodel_test:cpumodel_test@127.0.0.1:PORT/postgres
# so that `eval "$(bash scripts/start-postgres.sh)"` sets it. Everything else
# goes to standard error. A server this script started earlier (same
# directory) is reused; a stale directory is started again.
#
# Needs Debian's postgresql package (`apt-get install -y postgresql`).
#
# Environment: CPUMODEL_PG_DIR (default /tmp/cpumodel-postgres),
# CPUMODEL_PG_PORT (default 54329).
# Stop it with: pg_ctl -D "$CPUMODEL_PG_DIR/data" stop   (as its owner)
set -euo pipefail

dir=${CPUMODEL_PG_DIR:-/tmp/cpumodel-postgres}
port=${CPUMODEL_PG_PORT:-54329}
role=cpumodel_test
password=cpumodel_test

bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "start-postgres: PostgreSQL not found under /usr/lib/postgresql (apt-get install -y postgresql)" >&2
    exit 2
fi

# initdb and postgres refuse to run as root: run them as `postgres`.
as_owner=()
owner=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
    owner=postgres
    as_owner=(runuser -u postgres --)
fi

mkdir -p "$dir"
chown "$owner" "$dir"
chmod 700 "$dir"
cd "$dir"

if [ ! -f "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data"
    # The superuser logs in over the socket only (peer/trust inside a
    # directory only its owner can enter); the test role over TCP with a
    # password.
    "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
fi

mkdir -p "$dir/socket"
chown "$owner" "$dir/socket"

if ! "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir/socket -c max_connections=200" \
        start >&2 || {
        tail -n 20 "$dir/server.log" >&2
        exit 1
    }
fi

psql=("${as_owner[@]}" "$bin/psql" -h "$dir/socket" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = '$role'")" != 1 ]; then
    "${psql[@]}" -c "CREATE ROLE $role LOGIN CREATEDB PASSWORD '$password'" >&2
fi

url="postgres://$role:$password@127.0.0.1:$port/postgres"
echo "start-postgres: PostgreSQL $("${psql[@]}" -c 'SHOW server_version') on 127.0.0.1:$port (data in $dir/data)" >&2
echo "export CPUMODEL_TEST_POSTGRES=$url"
