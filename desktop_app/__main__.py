"""``python -m desktop_app``: the window, or the CLI when given a subcommand."""

import sys

from desktop_app.cli import main

sys.exit(main())
