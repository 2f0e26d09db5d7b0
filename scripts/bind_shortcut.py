#!/usr/bin/env python3
"""Bind a key to Desktop Search's quick search box where the desktop lets a script do it; say how elsewhere.

GNOME (and Unity and Budgie, which read GNOME's keybinding settings) gets a custom keybinding through
gsettings, added beside the user's own, never instead of them. KDE Plasma and the other desktops get
the exact steps to bind it by hand: their shortcut files take effect only once their shortcut service
restarts, so writing them would look like it failed. Every run says what it did and how to undo it.

    bind_shortcut.py offer --command CMD   ask at a terminal (`make install-desktop`), else say how
    bind_shortcut.py bind --command CMD    bind it (GNOME) or print the steps (elsewhere)
    bind_shortcut.py unbind                remove the binding this script added (`make uninstall-desktop`)

Standard library only: it runs before or without the app's virtual environment.
"""

from __future__ import annotations

import argparse
import ast
import os
import shlex
import shutil
import subprocess
import sys

# Super+Space switches the input source on GNOME and Alt+Space opens KRunner on KDE: this one is free on both.
DEFAULT_KEY = "<Primary><Alt>space"
SCHEMA = "org.gnome.settings-daemon.plugins.media-keys"
LIST_KEY = "custom-keybindings"
OURS = "/org/gnome/settings-daemon/plugins/media-keys/custom-keybindings/desktop-search-quick/"
NAME = "Desktop Search: quick search"
GNOME_LIKE = {"gnome", "unity", "budgie", "budgie-desktop", "ubuntu"}
SCRIPT = "scripts/bind_shortcut.py"


def desktop() -> str:
    """"gnome" where GNOME's keybinding settings apply, "kde" for Plasma, else "other"."""
    names = {part.strip().lower() for part in os.environ.get("XDG_CURRENT_DESKTOP", "").split(":")}
    if names & GNOME_LIKE:
        return "gnome"
    return "kde" if "kde" in names else "other"


def readable_key(key: str) -> str:
    """``<Primary><Alt>space`` as menus write it: Ctrl+Alt+Space."""
    words = {"primary": "Ctrl", "control": "Ctrl", "ctrl": "Ctrl", "alt": "Alt", "super": "Super", "shift": "Shift"}
    modifiers = [words.get(part.lower(), part) for part in key.replace(">", "<").split("<") if part][:-1]
    last = key.rsplit(">", 1)[-1]
    return "+".join([*modifiers, last[:1].upper() + last[1:]])


def gsettings(*arguments: str) -> str:
    done = subprocess.run(["gsettings", *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"gsettings {' '.join(arguments[:3])} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip()


def string_list(value: str) -> list[str]:
    """A GVariant array of strings as gsettings prints it: ``@as []`` or ``['/a/', '/b/']``."""
    value = value.removeprefix("@as").strip()
    parsed = ast.literal_eval(value) if value else []
    return [str(item) for item in parsed]


def quoted(text: str) -> str:
    """``text`` as a GVariant string (gsettings parses what it is given)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def binding_path(path: str) -> str:
    return f"{SCHEMA}.custom-keybinding:{path}"


def bind_gnome(command: str, key: str) -> int:
    paths = string_list(gsettings("get", SCHEMA, LIST_KEY))
    for other in (p for p in paths if p != OURS):
        if ast.literal_eval(gsettings("get", binding_path(other), "binding") or "''") == key:
            name = ast.literal_eval(gsettings("get", binding_path(other), "name") or "''")
            print(f"{readable_key(key)} is already your shortcut “{name}”: nothing was changed. Choose another key "
                  f"with --key (e.g. --key '<Primary><Alt>d').")
            return 1
    for field, value in (("name", NAME), ("command", command), ("binding", key)):
        gsettings("set", binding_path(OURS), field, quoted(value))
    if OURS not in paths:
        gsettings("set", SCHEMA, LIST_KEY, str([*paths, OURS]))
    print(f"Bound {readable_key(key)} to the quick search box: a GNOME custom shortcut named “{NAME}” "
          f"(Settings > Keyboard > Keyboard Shortcuts > Custom Shortcuts), running\n    {command}\n"
          f"Your other custom shortcuts are kept as they were.\n"
          f"To undo: make uninstall-desktop, or python3 {SCRIPT} unbind")
    return 0


def unbind_gnome() -> int:
    paths = string_list(gsettings("get", SCHEMA, LIST_KEY))
    if OURS not in paths:
        print("No quick search shortcut of Desktop Search is bound: nothing to remove.")
        return 0
    gsettings("set", SCHEMA, LIST_KEY, str([p for p in paths if p != OURS]))
    gsettings("reset-recursively", binding_path(OURS))
    print(f"Removed the GNOME custom shortcut “{NAME}”; your other shortcuts are kept.")
    return 0


def by_hand(where: str, command: str, key: str) -> str:
    """The steps to bind ``command`` to ``key`` on a desktop this script does not write to."""
    steps = {
        "kde": "KDE Plasma: System Settings > Keyboard > Shortcuts > Add New > Command or Script; "
               "paste the command, then set the shortcut",
        "gnome": "GNOME: Settings > Keyboard > Keyboard Shortcuts > View and Customise Shortcuts > Custom "
                 "Shortcuts > +; paste the command, then set the shortcut",
        "other": "Cinnamon, MATE: Keyboard > Shortcuts > Custom Shortcuts; Xfce: Keyboard > Application "
                 "Shortcuts > Add; other desktops and window managers: their keyboard shortcut settings",
    }[where]
    return f"To open the quick search box with a key ({readable_key(key)} suggested), bind this command:\n" \
           f"    {command}\n{steps}. To undo, remove that shortcut there."


def bind(command: str, key: str) -> int:
    where = desktop()
    if where != "gnome" or shutil.which("gsettings") is None:
        print(by_hand(where, command, key))
        return 0
    return bind_gnome(command, key)


def offer(command: str, key: str) -> int:
    """Ask at a terminal (GNOME only: elsewhere there is nothing to ask, the steps are shown); without one
    (a script, CI) only say how to bind it later."""
    later = f"python3 {SCRIPT} bind --command {shlex.quote(command)}"
    if desktop() != "gnome" or shutil.which("gsettings") is None:
        print(by_hand(desktop(), command, key))
        return 0
    if not sys.stdin.isatty():
        print(f"To open the quick search box with {readable_key(key)}, run: {later}")
        return 0
    answer = input(f"Bind {readable_key(key)} to Desktop Search's quick search box (a GNOME custom shortcut, "
                   f"removed by make uninstall-desktop)? [y/N] ")
    if answer.strip().lower() in ("y", "yes"):
        return bind_gnome(command, key)
    print(f"Not bound. Later: {later}")
    return 0


def unbind() -> int:
    if desktop() != "gnome" or shutil.which("gsettings") is None:
        print("This desktop's shortcuts are set by hand: remove the quick search shortcut in its keyboard settings "
              "if you added one.")
        return 0
    return unbind_gnome()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("offer", "bind", "unbind"))
    parser.add_argument("--command", default="desktop-search-gui --quick", help="what the key runs")
    parser.add_argument("--key", default=DEFAULT_KEY, help=f"in GNOME's notation (default {DEFAULT_KEY})")
    arguments = parser.parse_args(argv)
    try:
        if arguments.action == "unbind":
            return unbind()
        return (offer if arguments.action == "offer" else bind)(arguments.command, arguments.key)
    except (RuntimeError, ValueError, SyntaxError, EOFError) as error:
        print(f"bind_shortcut: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
