#!/usr/bin/env bash
# Build the self-contained folder app into dist/desktop-search/ and print its size.
#   packaging/build.sh            build (incremental: PyInstaller reuses build/ when it can)
#   packaging/build.sh --clean    throw away PyInstaller's cache first
#   packaging/build.sh --tar      also write dist/desktop-search-<version>-<os>-<arch>.tar.gz
# Uses the project's venv (.venv, made by `make setup`) unless PYTHON names another interpreter;
# PyInstaller comes from the `package` extra: pip install -e '.[package]'.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
DIST="$ROOT/dist"
WORK="$ROOT/build/pyinstaller"
APP="$DIST/desktop-search"

clean=()
tar=0
for arg in "$@"; do
  case "$arg" in
    --clean) clean=(--clean) ;;
    --tar) tar=1 ;;
    *) echo "usage: $0 [--clean] [--tar]" >&2; exit 2 ;;
  esac
done

"$PYTHON" -c "import PyInstaller" 2>/dev/null || {
  echo "PyInstaller is not installed: pip install -e '.[package]' (or: make package)" >&2; exit 1; }

start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm "${clean[@]}" --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" packaging/desktop_search.spec
# Outside Windows the GUI executable is the CLI too (it prints to the terminal it runs in); the
# symlink gives every platform the same command name without a second 80 MB executable.
if [ ! -e "$APP/desktop-search-cli.exe" ]; then
  ln -sfn desktop-search "$APP/desktop-search-cli"
fi
echo "built $APP in $(( $(date +%s) - start )) s"

# The local symbols in torch's and Arrow's largest libraries are a debugger's, not the loader's:
# --strip-unneeded keeps every symbol another library links against, and saves about 110 MB (libtorch_cpu
# 434 -> 345 MB). Only these three: stripping the others saves nothing (cv2, Qt) or was not checked.
# The smoke test below runs the stripped libraries (torch encodes, datasets imports Arrow).
if command -v strip >/dev/null; then
  for lib in "$APP"/_internal/torch/lib/libtorch_{cpu,python}.so "$APP"/_internal/pyarrow/libarrow.so.*[0-9]; do
    if [ -f "$lib" ] && [ ! -L "$lib" ]; then strip --strip-unneeded "$lib"; fi
  done
else
  echo "note: no strip (binutils) here: the bundle keeps about 110 MB of debugging symbols" >&2
fi

# Smoke test, as on a machine without Python: no venv on PATH, no network (HF_HUB_OFFLINE), a fresh
# HOME. The venv writes one file per format family, each with its own word (packaging/smoke_fixtures.py);
# the bundle must index them all and find each by its word, the scan and the photo through OCR.
SMOKE="$(mktemp -d)"
MODEL_CACHE="$APP/_internal/models/bge-m3-lite/desktop-search-cpu"
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null
  rm -rf "$SMOKE" "$MODEL_CACHE"  # the CPU-runtime probe writes beside a writable model: ship it pristine
}
trap cleanup EXIT
mkdir "$SMOKE/home"
TOKEN=smoke-test-token-0123456789
CLEAN_ENV=(env -i HOME="$SMOKE/home" PATH=/usr/bin:/bin HF_HUB_OFFLINE=1 DESKTOP_SEARCH_API_TOKEN="$TOKEN")
bundle() { "${CLEAN_ENV[@]}" "$APP/desktop-search-cli" "$@"; }
found() {  # found FAMILY QUERIES INDEX: each query's first hit is its family's file
  bundle search --queries "$2" --index "$3" --json -k 1 > "$SMOKE/hits"
  "$PYTHON" packaging/smoke_fixtures.py check "$SMOKE/files" "$2" "$SMOKE/hits" || {
    echo "smoke test failed: $1: see the families above" >&2; exit 1; }
}

bundle --version
"$PYTHON" packaging/smoke_fixtures.py write "$SMOKE/files" > "$SMOKE/queries"
echo "smoke test: indexing $(wc -l < "$SMOKE/queries") families with the bundle"
bundle index "$SMOKE/files" --index "$SMOKE/index"
found "local index" "$SMOKE/queries" "$SMOKE/index"

# The Qdrant client, embedded mode (a folder, no server).
grep "^text" "$SMOKE/queries" > "$SMOKE/qdrant-queries"
bundle index "$SMOKE/files/notes.txt" --index "$SMOKE/qdrant-index" --backend qdrant --qdrant-location "$SMOKE/qdrant"
found "qdrant backend" "$SMOKE/qdrant-queries" "$SMOKE/qdrant-index"

# The HTTP API (FastAPI on uvicorn): serve the index on a free port and search it with curl; the
# model loads in the background, so the first searches may wait or be refused.
# Not through bundle(): a backgrounded function is a subshell, and killing it would leave the server.
"${CLEAN_ENV[@]}" "$APP/desktop-search-cli" serve --index "$SMOKE/index" --port 0 > "$SMOKE/serve.log" 2>&1 &
server=$!
answer=""
for _ in $(seq 120); do
  kill -0 "$server" 2>/dev/null || break
  port=$(sed -n 's|.* at http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$SMOKE/serve.log")
  [ -n "$port" ] && answer=$(curl -sf -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$port/v1/search?q=albatross&k=1" || true)
  [ -n "$answer" ] && break
  sleep 1
done
case "$answer" in
  *'/notes.txt"'*) echo "  found  api       albatross    notes.txt (GET /v1/search)" ;;
  *) echo "smoke test failed: api: no answer from serve; its log:" >&2; cat "$SMOKE/serve.log" >&2; exit 1 ;;
esac
kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; server=""
rm -rf "$MODEL_CACHE"
echo "smoke test passed"

bytes=$(du -sb "$APP" | cut -f1)
echo "bundle size: $(du -sh "$APP" | cut -f1), $bytes bytes  ($(find "$APP" -type f | wc -l) files)"
if [ "$bytes" -gt 1500000000 ]; then
  echo "the bundle is over its 1.5 GB budget (packaging/README.md says what is in it)" >&2
  exit 1
fi
echo "largest parts:"
du -sm "$APP"/_internal/* | sort -rn | awk 'NR <= 8 {printf "  %6d MB  %s\n", $1, $2}'

if [ "$tar" = 1 ]; then
  version=$("$PYTHON" -c "import desktop_app; print(desktop_app.__version__)")
  archive="$DIST/desktop-search-$version-$(uname -s | tr A-Z a-z)-$(uname -m).tar.gz"
  tar -C "$DIST" -czf "$archive" desktop-search
  echo "archive: $archive ($(du -h "$archive" | cut -f1))"
fi
