"""Start-up: time until the window is visible, until a query typed at launch shows results (by
words, before the model is loaded) and until the same list is ranked by meaning (torch imported,
model loaded). Runs the real window offscreen on an index of Cranfield abstracts; with ``--quick``
the same for the quick search box (``desktop-search-gui --quick`` when the app is not running yet).

    python bench/startup.py [--model DIR] [--index DIR] [--docs N] [--quick]
    # exits 1 when the window (or box) takes >= 1 s or the first results >= 2 s
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
WORK = REPO / "bench" / "work" / "startup"
VISIBLE_TARGET_S = 1.0
FIRST_RESULTS_TARGET_S = 2.0
PROBE = """
import sys, time
started = time.perf_counter()
from PySide6.QtWidgets import QApplication
from desktop_app.gui.app import MainWindow
from desktop_app.gui.settings import open_qsettings
app = QApplication([])
window = MainWindow(open_qsettings(sys.argv[1]))
quick = sys.argv[2] == "quick"
if quick:
    window.show_quick()
    window.quick.box.query.setText("how do wings stall")  # typed at launch
    searching = window.quick
else:
    window.search_bar.query.setText("how do wings stall")
    window.show()
    searching = window.searching
app.processEvents()
visible = time.perf_counter() - started
torch_at_show = "torch" in sys.modules
times = {}
def ready():
    times["model_ready_s"] = time.perf_counter() - started
def shown(result):
    now = time.perf_counter() - started
    if "first_results_s" not in times:
        times.update(first_results_s=now, first_mode=result.mode, first_hits=len(result.hits),
                     torch_imported_by_first_results="torch" in sys.modules)
        if result.mode == "keyword":
            return  # ranked by words: the model's ranking follows
    times.update(meaning_results_s=now, meaning_mode=result.mode, first_search_ms=result.took_ms)
    window.close()
    app.quit()
window.model_control.ready.connect(ready)
searching.results_shown.connect(shown)
window.error_shown.connect(lambda message: (print(message, file=sys.stderr), app.exit(1)))
app.exec()
import json
shown_in = {"quick_box" if quick else "window": True}
print(json.dumps({**shown_in, "window_visible_s": visible, "torch_imported_before_show": torch_at_show, **times}))
"""


def build_index(model: Path, docs: int) -> Path:
    """An index of the first ``docs`` Cranfield abstracts, made once per model."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import quality
    import testsets

    index = WORK / f"index-{model.name}-{docs}"
    if (index / "index.sqlite3").exists():
        return index
    folder = WORK / f"cranfield-{docs}"
    collection = testsets.load(testsets.DATASETS / "cranfield")
    quality.write_documents(dict(list(collection.documents.items())[:docs]), folder)
    env = dict(quality.cli_env(), DESKTOP_SEARCH_MODEL=str(model), DESKTOP_SEARCH_DEVICE="cpu")
    subprocess.run([sys.executable, "-m", "desktop_app", "index", str(folder), "--index", str(index)], env=env,
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "bge-m3-lite")
    parser.add_argument("--index", type=Path, help="an existing index (default: --docs Cranfield abstracts)")
    parser.add_argument("--docs", type=int, default=300, help="Cranfield abstracts in the default index")
    parser.add_argument("--quick", action="store_true", help="the quick search box instead of the window")
    args = parser.parse_args()
    index = args.index or build_index(args.model.resolve(), args.docs)
    with tempfile.TemporaryDirectory() as work:
        ini = Path(work) / "settings.ini"
        ini.write_text(f"[General]\nmodel={args.model}\nindex_dir={index}\n")
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
        what = "quick" if args.quick else "window"
        done = subprocess.run([sys.executable, "-c", PROBE, str(ini), what], capture_output=True, text=True, env=env,
                              cwd=REPO, timeout=600)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return 1
    result = {k: round(v, 3) if isinstance(v, float) else v
              for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}
    print(json.dumps(result, indent=2))
    met = (result["window_visible_s"] < VISIBLE_TARGET_S and not result["torch_imported_before_show"]
           and result["first_results_s"] < FIRST_RESULTS_TARGET_S)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
