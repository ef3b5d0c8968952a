#!/bin/sh
# The official postgres image's start-up contract, in short: on an empty data directory, initdb with
# POSTGRES_USER and the password from POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD), create POSTGRES_DB,
# accept password (scram-sha-256) connections from the network; then run the server.
set -eu
if [ "$(id -u)" = 0 ]; then  # as the official image: read the secret as root, run the server as postgres
  mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 0700 "$PGDATA"
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    install -o postgres -m 0600 "$POSTGRES_PASSWORD_FILE" /tmp/postgres-password
    export POSTGRES_PASSWORD_FILE=/tmp/postgres-password
  fi
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    password_file=$POSTGRES_PASSWORD_FILE
  elif [ -n "${POSTGRES_PASSWORD:-}" ]; then
    password_file=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" >"$password_file"
  else
    echo "POSTGRES_PASSWORD_FILE or POSTGRES_PASSWORD must be set" >&2
    exit 1
  fi
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$password_file" -E UTF8 --auth-local=trust --auth-host=scram-sha-256
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  if [ "$POSTGRES_DB" != postgres ]; then
    createdb -U "$POSTGRES_USER" "$POSTGRES_DB"
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop
  rm -f /tmp/postgres-password
fi
if [ "$1" = postgres ]; then
  shift
  exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"
