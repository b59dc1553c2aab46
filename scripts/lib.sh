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

# Install the front-end packages (npm workspace: miniapp/, console/) when package-lock.json changed.
ensure_node_env() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "Zhilian's phone app needs Node.js 20.19+ and npm (https://nodejs.org or apt-get install nodejs npm)" >&2
    return 1
  fi
  local stamp_file="$REPO_ROOT/node_modules/.zhilian-installed" wanted
  wanted="$(sha256sum "$REPO_ROOT/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp_file" 2>/dev/null)" != "$wanted" ]; then
    echo "[setup] installing front-end packages (npm ci)"
    (cd "$REPO_ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$wanted" > "$stamp_file"
  fi
}

# Build <name>/dist (miniapp served at /m/, console at /console/) when its sources changed since the last build.
build_frontend() {
  local name="$1"
  ensure_node_env
  local stamp_file="$REPO_ROOT/$name/dist/.zhilian-built" wanted
  wanted="$(cd "$REPO_ROOT" && find "$name" package-lock.json \( -path "$name/dist" -o -path '*/node_modules' \) -prune \
    -o -type f -print | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp_file" 2>/dev/null)" != "$wanted" ] || [ ! -f "$REPO_ROOT/$name/dist/index.html" ]; then
    echo "[build] $name -> $name/dist"
    (cd "$REPO_ROOT" && npm run build --workspace "$name" --silent)
    echo "$wanted" > "$stamp_file"
  fi
}

# Both front ends: the resident app and the staff console.
build_frontends() {
  build_frontend miniapp
  build_frontend console
}

# Debian's Chromium (and a CJK font) for the browser tests; Playwright drives it, never downloads one.
ensure_chromium() {
  local packages=()
  [ -x /usr/bin/chromium ] || packages+=(chromium)
  if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then packages+=(fonts-noto-cjk); fi
  [ ${#packages[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  echo "[setup] apt-get install ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}"
}
