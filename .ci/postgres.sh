# Sourced by .ci/run: a throwaway PostgreSQL on loopback for the `radlab tune` worker tests.
# Installs Debian's postgresql when missing, starts a fresh cluster in a temporary folder on a free port,
# exports RADLAB_TEST_POSTGRES_URL, and stops and deletes the cluster when the calling shell exits.

postgres_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

if [ -z "$(postgres_bin)" ]; then
    echo "installing Debian's postgresql (the tune tests run two workers against it)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q postgresql >/tmp/radlab-ci-apt-pg.log 2>&1 \
        || { $sudo apt-get update -q >>/tmp/radlab-ci-apt-pg.log 2>&1 \
             && $sudo apt-get install -y -q postgresql >>/tmp/radlab-ci-apt-pg.log 2>&1; } \
        || { tail -20 /tmp/radlab-ci-apt-pg.log; exit 1; }
fi

PG_BIN="$(postgres_bin)"
PG_DIR="$(mktemp -d /tmp/radlab-ci-pg.XXXXXX)"
PG_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user the package made.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$PG_DIR"
    as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U radlab -A trust >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log"; exit 1; }
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR" start >/dev/null \
    || { cat "$PG_DIR/server.log"; exit 1; }

stop_postgres() {
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap stop_postgres EXIT

export RADLAB_TEST_POSTGRES_URL="postgresql://radlab@127.0.0.1:$PG_PORT/postgres"
export RADLAB_POSTGRES_TESTS=required
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT for the tests"
