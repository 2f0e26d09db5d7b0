"""Entry point of the bundled executables: the same as ``python -m desktop_app``.

Without arguments it opens the window; with a subcommand it runs the CLI. PyInstaller
analyses this file, so everything the app needs must be reachable from here (lazy imports
that static analysis cannot see are listed as hidden imports in desktop_search.spec).
"""

import multiprocessing
import sys

if __name__ == "__main__":
    # A frozen app has no interpreter to re-run for multiprocessing "spawn" children (FlagEmbedding's
    # multi-device encode, torch DataLoader workers): freeze_support makes the executable act as one.
    multiprocessing.freeze_support()
    from desktop_app.cli import main

    sys.exit(main())
