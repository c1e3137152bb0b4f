#!/bin/sh
# First start: initdb with a scram-sha-256 password for POSTGRES_USER. Until it has
# succeeded once (a marker file), each start also makes the databases POSTGRES_DB and
# POSTGRES_EXTRA_DATABASES (comma-separated), owned by that user, so that a start
# killed half-way is finished by the next one. Then PostgreSQL runs in the
# foreground, on every address, password authentication for all.
set -eu
: "${PGDATA:?}" "${POSTGRES_USER:?}" "${POSTGRES_PASSWORD:?}" "${POSTGRES_DB:?}"
export PGPASSWORD="$POSTGRES_PASSWORD"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth=scram-sha-256 --encoding=UTF8 -D "$PGDATA"
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
if [ ! -f "$PGDATA/triptych-databases.done" ]; then
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" -w start
  for db in "$POSTGRES_DB" $(echo "${POSTGRES_EXTRA_DATABASES:-}" | tr ',' ' '); do
    exists=$(psql -h /tmp -U "$POSTGRES_USER" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")
    [ "$exists" = 1 ] || psql -h /tmp -U "$POSTGRES_USER" -d postgres -v ON_ERROR_STOP=1 \
      -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  touch "$PGDATA/triptych-databases.done"
fi
unset PGPASSWORD
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
