#!/usr/bin/env bash
# Render the committed hicolor icons from resources/icons/desktop-search.svg.
# Only whoever changes the SVG needs rsvg-convert (Debian: librsvg2-bin); the app and
# `make install-desktop` use the committed PNGs.
set -euo pipefail
cd "$(dirname "$0")/.."
icons=resources/icons
svg=$icons/desktop-search.svg
for size in 16 24 32 48 64 128 256 512; do
  mkdir -p "$icons/hicolor/${size}x${size}/apps"
  rsvg-convert --width "$size" --height "$size" "$svg" --output "$icons/hicolor/${size}x${size}/apps/desktop-search.png"
done
mkdir -p "$icons/hicolor/scalable/apps"
cp "$svg" "$icons/hicolor/scalable/apps/desktop-search.svg"
