#!/usr/bin/env bash
# Screenshots of the real window under Xvfb: index a demo corpus, search, select the first hit.
# Usage: scripts/screenshots.sh OUT_DIR   (needs Debian's xvfb, imagemagick and xdotool)
set -euo pipefail
out=${1:-docs/screenshots}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME="$work/home" DESKTOP_SEARCH_HOME="$work/index" HF_HUB_OFFLINE=1
mkdir -p "$HOME" "$work/docs"
.venv/bin/python - "$work/docs" <<'PY'
import re, sys
from pathlib import Path
target = Path(sys.argv[1])
text = Path("../shared/datasets/cranfield/cran.all.1400").read_text()
for record in re.split(r"^\.I ", text, flags=re.M)[1:301]:
    number = record.split("\n", 1)[0].strip()
    title = re.search(r"\.T\n(.*?)\n\.A", record, re.S).group(1).strip()
    body = record.split(".W\n", 1)[1].strip()
    name = re.sub(r"[^a-z0-9]+", "-", title.lower())[:60].strip("-")
    (target / f"{number}-{name}.txt").write_text(f"{title}\n\n{body}")
PY
.venv/bin/desktop-search index "$work/docs" >/dev/null
# shot SIZE QUERY CLICK_Y FILE: the window at SIZE under Xvfb, QUERY typed, the hit at CLICK_Y selected.
shot() {
  local size=$1 query=$2 click_y=$3 file=$4
  Xvfb :97 -screen 0 "${size}x24" >/dev/null 2>&1 &
  local xvfb=$!
  sleep 1
  DISPLAY=:97 .venv/bin/desktop-search >/dev/null 2>&1 &
  local app=$!
  sleep 12
  local window
  window=$(DISPLAY=:97 xdotool search --name "Desktop Search" | head -1)
  DISPLAY=:97 xdotool windowsize "$window" "${size%x*}" "${size#*x}" windowmove "$window" 0 0
  DISPLAY=:97 xdotool mousemove 300 50 click 1 type --delay 30 "$query"
  DISPLAY=:97 xdotool key Return
  sleep 4
  DISPLAY=:97 xdotool mousemove 500 "$click_y" click 1
  sleep 2
  DISPLAY=:97 import -window root "$out/$file"
  kill "$app" "$xvfb" 2>/dev/null || true
  wait "$app" "$xvfb" 2>/dev/null || true
}
for size in 1280x800 1920x1080; do
  shot "$size" "how do wings stall at high angles of attack" 190 "window-$size.png"
done
# A filtered search: operators typed into the box show as chips under it.
shot 1280x800 'wing flutter -supersonic name:flutter ext:txt' 220 filtered-1280x800.png
echo "screenshots in $out"
