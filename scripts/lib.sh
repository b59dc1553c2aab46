# Shared by scripts/dev and scripts/test: install what is missing, nothing more.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
PY="$VENV/bin/python"

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Zhilian needs Python 3.11 or newer" >&2
  return 1
}

# Create .venv and (re)install the project with its dev extras when pyproject.toml changed.
ensure_python_env() {
  if [ ! -x "$PY" ]; then
    echo "[setup] creating $VENV"
    "$(find_python)" -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
  fi
  local stamp_file="$VENV/.zhilian-installed" wanted
  wanted="$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ "$(cat "$stamp_file" 2>/dev/null)" != "$wanted" ] || ! "$PY" -c 'import backend, chain' 2>/dev/null; then
    echo "[setup] installing Python dependencies into .venv (first run takes a few minutes)"
    "$PY" -m pip install --quiet -e "$REPO_ROOT[dev]"
    echo "$wanted" > "$stamp_file"
  fi
}

pg_answering() {
  "$PY" - "$1" <<'PY' 2>/dev/null
import asyncio, sys
import asyncpg
async def main():
    conn = await asyncio.wait_for(asyncpg.connect(sys.argv[1]), 5)
    await conn.close()
asyncio.run(main())
PY
}

redis_answering() {
  "$PY" - "$1" <<'PY' 2>/dev/null
import sys
import redis
sys.exit(0 if redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3).ping() else 1)
PY
}
