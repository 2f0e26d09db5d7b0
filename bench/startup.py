"""Start-up: time until the window is visible, and until the first search's results are shown
(which includes importing torch and loading the model). Runs the real window offscreen.

    python bench/startup.py [--model DIR] [--index DIR]   # exits 1 when the window takes >= 1 s
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = """
import sys, time
started = time.perf_counter()
from PySide6.QtWidgets import QApplication
from desktop_app.gui.app import MainWindow
from desktop_app.gui.settings import open_qsettings
app = QApplication([])
window = MainWindow(open_qsettings(sys.argv[1]))
window.show()
app.processEvents()
visible = time.perf_counter() - started
torch_at_show = "torch" in sys.modules
times = {}
def ready():
    times["model_ready_s"] = time.perf_counter() - started
    window.query.setText("how do wings stall")
    window.run_search()
def shown(result):
    times["first_results_s"] = time.perf_counter() - started
    times["first_search_ms"] = result.took_ms
    window.close()
    app.quit()
window.model_ready.connect(ready)
window.results_shown.connect(shown)
window.error_shown.connect(lambda message: (print(message, file=sys.stderr), app.exit(1)))
app.exec()
import json
print(json.dumps({"window_visible_s": visible, "torch_imported_before_show": torch_at_show, **times}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "bge-m3-lite")
    parser.add_argument("--index", type=Path, help="an existing index (default: a new, empty one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        ini = Path(work) / "settings.ini"
        ini.write_text(f"[General]\nmodel={args.model}\nindex_dir={args.index or Path(work) / 'index'}\n")
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
        done = subprocess.run([sys.executable, "-c", PROBE, str(ini)], capture_output=True, text=True, env=env,
                              cwd=REPO, timeout=600)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return 1
    result = {k: round(v, 3) if isinstance(v, float) else v
              for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}
    print(json.dumps(result, indent=2))
    return 0 if result["window_visible_s"] < 1.0 and not result["torch_imported_before_show"] else 1


if __name__ == "__main__":
    sys.exit(main())
