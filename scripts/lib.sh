# Shared by scripts/dev and scripts/test: check prerequisites, install what is missing, nothing more.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
PY="$VENV/bin/python"
NODE_MIN="20.19"

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

# True when this shell may install Debian packages (root, or sudo without a password) and apt-get exists.
can_apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  [ "$(id -u)" -eq 0 ] && return 0
  command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null
}

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  echo "[setup] apt-get install $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

# version_at_least HAVE WANT: dotted versions compared numerically (20.9 < 20.19).
version_at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

# Every prerequisite of `purpose` (dev | test), checked before anything is installed or started.
# Each missing piece is named with the exact command that fixes it; the run stops when one is missing.
# For tests, Debian's Chromium (and a CJK font) is installed here when this shell may install packages.
check_prerequisites() {
  local purpose="$1" missing=() python node_version
  if ! python="$(find_python)"; then
    missing+=("Python 3.11 or newer: apt-get install python3 python3-venv (Debian 12 has 3.11), or https://www.python.org/downloads/")
  elif [ ! -x "$PY" ] && ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    local minor
    minor="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    missing+=("Python's venv module for $python: apt-get install python${minor}-venv")
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=("Node.js $NODE_MIN+ with npm (the front ends are built with Vite 8): https://nodejs.org/en/download, or on Debian: curl -fsSL https://deb.nodesource.com/setup_20.x | bash - && apt-get install -y nodejs (Debian's own nodejs 18 is too old)")
  else
    node_version="$(node --version 2>/dev/null | sed 's/^v//')"
    version_at_least "$node_version" "$NODE_MIN" ||
      missing+=("Node.js $NODE_MIN+ (found $node_version): https://nodejs.org/en/download, or on Debian: curl -fsSL https://deb.nodesource.com/setup_20.x | bash - && apt-get install -y nodejs")
  fi
  if [ "$purpose" = test ]; then
    local packages=()
    command -v chromium >/dev/null 2>&1 || packages+=(chromium)
    if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then packages+=(fonts-noto-cjk); fi
    if [ ${#packages[@]} -gt 0 ]; then
      if [ ${#missing[@]} -eq 0 ] && can_apt_install; then
        apt_install "${packages[@]}"
      else
        missing+=("for the browser tests, Debian's ${packages[*]}: apt-get install ${packages[*]} (scripts/test installs it itself when run as root or with passwordless sudo)")
      fi
    fi
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Zhilian cannot $([ "$purpose" = test ] && echo "run its tests" || echo "start") on this machine yet. Missing:" >&2
    local item
    for item in "${missing[@]}"; do echo "  - $item" >&2; done
    return 1
  fi
}

# with_progress LABEL COMMAND...: run a long step quietly, saying every 15 s that it is still working;
# on failure show the end of its output.
with_progress() {
  local label="$1"; shift
  local log started next pid status=0
  log="$(mktemp "${TMPDIR:-/tmp}/zhilian-step.XXXXXX")"
  started=$SECONDS
  next=$((started + 15))
  echo "[setup] $label"
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ "$SECONDS" -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
      echo "[setup]   ... still working on: $label ($((SECONDS - started)) s)"
      next=$((next + 15))
    fi
  done
  wait "$pid" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "[setup] failed: $label (exit $status); last lines of its output:" >&2
    tail -n 40 "$log" >&2
  else
    echo "[setup] done: $label ($((SECONDS - started)) s)"
  fi
  rm -f "$log"
  return "$status"
}

# Create .venv and (re)install the project with its dev extras when pyproject.toml changed.
# A .venv left broken by an earlier failure (no python or no pip inside) is rebuilt, not reused.
ensure_python_env() {
  if [ -d "$VENV" ] && ! { [ -x "$PY" ] && "$PY" -m pip --version >/dev/null 2>&1; }; then
    echo "[setup] $VENV is incomplete (an earlier set-up failed): rebuilding it"
    rm -rf "$VENV"
  fi
  if [ ! -x "$PY" ]; then
    local python
    python="$(find_python)" || { echo "Zhilian needs Python 3.11 or newer" >&2; return 1; }
    echo "[setup] creating $VENV with $python"
    if ! "$python" -m venv "$VENV"; then
      rm -rf "$VENV"
      echo "creating the virtual environment failed: install Python's venv module (apt-get install python3-venv)" >&2
      return 1
    fi
    with_progress "upgrading pip in .venv" "$PY" -m pip install --upgrade pip
  fi
  local stamp_file="$VENV/.zhilian-installed" wanted
  wanted="$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ "$(cat "$stamp_file" 2>/dev/null)" != "$wanted" ] || ! "$PY" -c 'import backend, chain' 2>/dev/null; then
    with_progress "installing Python dependencies into .venv (a few minutes the first time)" \
      "$PY" -m pip install -e "$REPO_ROOT[dev]"
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
    echo "Zhilian's front ends need Node.js $NODE_MIN+ and npm: see scripts/lib.sh check_prerequisites" >&2
    return 1
  fi
  local stamp_file="$REPO_ROOT/node_modules/.zhilian-installed" wanted
  wanted="$(sha256sum "$REPO_ROOT/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp_file" 2>/dev/null)" != "$wanted" ]; then
    (cd "$REPO_ROOT" && with_progress "installing front-end packages (npm ci)" \
      npm ci --no-audit --no-fund --loglevel=error)
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
    (cd "$REPO_ROOT" && with_progress "building $name -> $name/dist" npm run build --workspace "$name" --silent)
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
  command -v chromium >/dev/null 2>&1 || packages+=(chromium)
  if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then packages+=(fonts-noto-cjk); fi
  [ ${#packages[@]} -eq 0 ] && return 0
  apt_install "${packages[@]}"
}
