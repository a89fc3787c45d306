#!/usr/bin/env bash
# Prepare the real Vendure peer (tests/peer/vendure) for the `peer` tests. Idempotent:
#   - `npm ci` only when package-lock.json changed since the last install (or nothing installed);
#   - seeds the sample catalogue (54 products) into seed.db once per version of the packages,
#     vendure-config.js and populate.js; tests copy it per session.
# Without node it only says so: the peer tests then skip themselves, loudly.
set -euo pipefail
cd "$(dirname "$0")/../tests/peer/vendure"
export VENDURE_DISABLE_TELEMETRY=true   # Vendure would otherwise call its telemetry host

if ! command -v node >/dev/null 2>&1; then
  echo "vendure.sh: node not found -- the Vendure peer tests will be SKIPPED" >&2
  exit 0
fi

start=$SECONDS
stamp=node_modules/.shopkeeper-installed-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  rm -f seed.db   # built by the previous install; rebuild with the new packages
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
  echo "vendure.sh: npm ci done in $((SECONDS - start)) s" >&2
fi

seed_key=$(cat package-lock.json vendure-config.js populate.js | sha256sum | cut -d' ' -f1)
if [ ! -f seed.db ] || [ "$(cat seed.key 2>/dev/null)" != "$seed_key" ]; then
  seeded=$SECONDS
  rm -f seed.db.tmp
  if ! VENDURE_DB="$PWD/seed.db.tmp" node populate.js >populate.log 2>&1; then
    tail -n 40 populate.log >&2
    echo "vendure.sh: seeding failed (full log: tests/peer/vendure/populate.log)" >&2
    exit 1
  fi
  mv seed.db.tmp seed.db
  echo "$seed_key" > seed.key
  echo "vendure.sh: seeded seed.db in $((SECONDS - seeded)) s" >&2
fi
echo "vendure.sh: Vendure peer ready ($((SECONDS - start)) s)" >&2
