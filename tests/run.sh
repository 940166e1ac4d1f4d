#!/bin/bash
# `make test`: the suite on PostgreSQL (when one answers), then the database-sensitive core on SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/gpuq}
mkdir -p test-artifacts
echo "== ruff (lint and format)"
RUFF="$(dirname "$PY")/ruff"; "$RUFF" check . && "$RUFF" format --check .
echo "== mypy (the packages, as pyproject.toml configures it)"
"$(dirname "$PY")/mypy"
if $PY - "$PG_URL" <<'PYEOF'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1].rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
except Exception:
    sys.exit(1)
PYEOF
then
  echo "== test suite on PostgreSQL ($PG_URL)"
  DATABASE_URL=$PG_URL $PY -m pytest "$@"
  echo "== the database-sensitive tests again, on SQLite"
  DATABASE_URL= $PY -m pytest -m "not gpu and sqlite" "$@"
else
  echo "== no PostgreSQL on 127.0.0.1:5432: the whole suite runs on SQLite"
  DATABASE_URL= $PY -m pytest "$@"
fi
