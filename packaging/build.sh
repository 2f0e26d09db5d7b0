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

# Smoke test: the bundled CLI starts without the venv (clean environment).
env -i HOME="${TMPDIR:-/tmp}" PATH=/usr/bin:/bin "$APP/desktop-search-cli" --version

echo "bundle size: $(du -sh "$APP" | cut -f1)  ($(find "$APP" -type f | wc -l) files)"
echo "largest parts:"
du -sm "$APP"/_internal/* | sort -rn | awk 'NR <= 8 {printf "  %6d MB  %s\n", $1, $2}'

if [ "$tar" = 1 ]; then
  version=$("$PYTHON" -c "import desktop_app; print(desktop_app.__version__)")
  archive="$DIST/desktop-search-$version-$(uname -s | tr A-Z a-z)-$(uname -m).tar.gz"
  tar -C "$DIST" -czf "$archive" desktop-search
  echo "archive: $archive ($(du -h "$archive" | cut -f1))"
fi
