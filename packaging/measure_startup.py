#!/usr/bin/env python3
"""Start-up time of the bundled app vs the app run from the venv, under Xvfb.

For each app it measures, from launch:
  window  - until a visible top-level window titled "Desktop Search ..." exists (xdotool);
  ready   - until its title says the model is loaded ("Desktop Search — <model> on CPU (...)").
Both apps run with the same clean environment (env -i: HOME, PATH=/usr/bin:/bin, DISPLAY), each
with its own fresh HOME, so the index is created on the warm-up run and reopened on the measured
ones. Runs alternate between the apps so that load on a shared machine hits both alike.

    python3 packaging/measure_startup.py                    # 3 runs each, display :99
    python3 packaging/measure_startup.py --runs 5 --screenshot docs/screenshots/bundle-1280x800.png

Needs Xvfb, xdotool and (for --screenshot) ImageMagick's `import`:
    apt-get install -y xvfb xdotool imagemagick
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = {
    "bundle": ROOT / "dist" / "desktop-search" / "desktop-search",
    "venv": ROOT / ".venv" / "bin" / "desktop-search",
}
READY_MARKERS = (" on CPU", " on CUDA")
FAILED_TITLE = "Desktop Search — no model"


def xdotool(*args: str) -> str:
    done = subprocess.run(["xdotool", *args], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def ensure_xvfb(display: str, size: str) -> subprocess.Popen | None:
    """Start Xvfb on ``display`` unless something already serves it; return what we started."""
    env = dict(os.environ, DISPLAY=display)
    if subprocess.run(["xdotool", "getdisplaygeometry"], env=env, capture_output=True).returncode == 0:
        return None
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        time.sleep(0.1)
        if subprocess.run(["xdotool", "getdisplaygeometry"], env=env, capture_output=True).returncode == 0:
            return server
    server.kill()
    sys.exit(f"Xvfb did not start on {display}")


def one_run(app: Path, home: Path, display: str, timeout: float, screenshot: Path | None) -> dict:
    os.environ["DISPLAY"] = display  # for xdotool
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "DISPLAY": display}
    log = open(home / "app.log", "ab")
    start = time.perf_counter()
    process = subprocess.Popen([str(app)], env=env, cwd=home, stdout=log, stderr=log,
                               start_new_session=True)
    window = ready = None
    title = ""
    try:
        while time.perf_counter() - start < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"{app} exited with {process.returncode}; see {home / 'app.log'}")
            ids = xdotool("search", "--onlyvisible", "--pid", str(process.pid), "--name", "^Desktop Search")
            if ids:
                if window is None:
                    window = time.perf_counter() - start
                title = xdotool("getwindowname", ids.split()[0])
                if any(marker in title for marker in READY_MARKERS):
                    ready = time.perf_counter() - start
                    break
                if title == FAILED_TITLE:
                    raise RuntimeError(f"{app}: the model failed to load; see {home / 'app.log'}")
            time.sleep(0.02)
        else:
            raise RuntimeError(f"{app}: not ready after {timeout:.0f} s (title {title!r})")
        if screenshot is not None:
            time.sleep(1.0)  # let the first paint after the title change land
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["import", "-display", display, "-window", "root", str(screenshot)], check=True)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
    return {"window": window, "ready": ready, "title": title}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="measured runs per app (default 3)")
    parser.add_argument("--display", default=":99")
    parser.add_argument("--size", default="1280x800", help="Xvfb screen size (default 1280x800)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the model")
    parser.add_argument("--screenshot", type=Path, help="screenshot of the screen once the bundle is ready")
    parser.add_argument("--apps", default="bundle,venv", help="which apps, comma separated (bundle,venv)")
    args = parser.parse_args()

    names = [name.strip() for name in args.apps.split(",") if name.strip()]
    for name in names:
        if name not in APPS or not APPS[name].exists():
            sys.exit(f"{name}: {APPS.get(name, '?')} is missing (make package / make setup)")
    for tool in ("Xvfb", "xdotool") + (("import",) if args.screenshot else ()):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install -y xvfb xdotool imagemagick")

    server = ensure_xvfb(args.display, args.size)
    work = Path(tempfile.mkdtemp(prefix="desktop-search-startup-"))
    results: dict[str, list[dict]] = {name: [] for name in names}
    try:
        homes = {name: work / name for name in names}
        for name in names:
            homes[name].mkdir()
            warm = one_run(APPS[name], homes[name], args.display, args.timeout, None)
            print(f"{name:7s} warm-up  window {warm['window']:6.2f} s  ready {warm['ready']:6.2f} s  "
                  f"({warm['title']})", flush=True)
        for run in range(args.runs):
            for name in names:
                shot = args.screenshot if (name == "bundle" and run == 0) else None
                result = one_run(APPS[name], homes[name], args.display, args.timeout, shot)
                results[name].append(result)
                print(f"{name:7s} run {run + 1}    window {result['window']:6.2f} s  "
                      f"ready {result['ready']:6.2f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if server is not None:
            server.terminate()
            server.wait()

    print(f"\nmedian of {args.runs} runs (warm file cache):")
    for name in names:
        window = statistics.median(r["window"] for r in results[name])
        ready = statistics.median(r["ready"] for r in results[name])
        print(f"  {name:7s} window visible {window:6.2f} s   model ready {ready:6.2f} s")
    if args.screenshot:
        print(f"screenshot: {args.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
