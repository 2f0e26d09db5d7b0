"""scripts/bind_shortcut.py and `make install-desktop`'s offer of a key for the quick search box, against a
fake `gsettings` that keeps its values in a file and records every call."""

from __future__ import annotations

import ast
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "bind_shortcut.py"
SCHEMA = "org.gnome.settings-daemon.plugins.media-keys"
OURS = "/org/gnome/settings-daemon/plugins/media-keys/custom-keybindings/desktop-search-quick/"
THEIRS = "/org/gnome/settings-daemon/plugins/media-keys/custom-keybindings/custom0/"
COMMAND = '"/opt/ds/.venv/bin/desktop-search-gui" --quick'
FAKE_GSETTINGS = """#!{python}
import json, sys
state_file, log_file = {state!r}, {log!r}
with open(log_file, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
state = json.load(open(state_file))
verb, schema = sys.argv[1], sys.argv[2]
if verb == "get":
    default = "@as []" if sys.argv[3] == "custom-keybindings" else "''"
    print(state.get(schema + " " + sys.argv[3], default))
elif verb == "set":
    state[schema + " " + sys.argv[3]] = sys.argv[4]
elif verb == "reset-recursively":
    state = {{key: value for key, value in state.items() if not key.startswith(schema + " ")}}
json.dump(state, open(state_file, "w"))
"""


class FakeGsettings:
    """A `gsettings` on PATH whose values live in a JSON file, with the user's own custom shortcut in it."""

    def __init__(self, folder: Path) -> None:
        self.state, self.log = folder / "state.json", folder / "calls.log"
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        program = bin_dir / "gsettings"
        program.write_text(FAKE_GSETTINGS.format(python=sys.executable, state=str(self.state), log=str(self.log)))
        program.chmod(0o755)
        self.log.write_text("")
        self.state.write_text(json.dumps({f"{SCHEMA} custom-keybindings": repr([THEIRS]),
                                          f"{SCHEMA}.custom-keybinding:{THEIRS} binding": "'<Super>t'",
                                          f"{SCHEMA}.custom-keybinding:{THEIRS} name": "'Terminal'"}))
        self.env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                        XDG_CURRENT_DESKTOP="ubuntu:GNOME")

    def value(self, schema: str, key: str) -> object:
        stored = json.loads(self.state.read_text()).get(f"{schema} {key}")
        return None if stored is None else ast.literal_eval(stored.removeprefix("@as "))

    def ours(self, key: str) -> object:
        return self.value(f"{SCHEMA}.custom-keybinding:{OURS}", key)

    def sets(self) -> list[list[str]]:
        return [call for call in map(json.loads, self.log.read_text().splitlines()) if call[0] != "get"]


@pytest.fixture
def gsettings(tmp_path: Path) -> FakeGsettings:
    return FakeGsettings(tmp_path)


def run_script(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=60)


def test_bind_adds_beside_the_users_shortcuts_and_unbind_removes_only_it(gsettings: FakeGsettings) -> None:
    done = run_script(gsettings.env, "bind", "--command", COMMAND)
    assert done.returncode == 0, done.stderr
    assert gsettings.value(SCHEMA, "custom-keybindings") == [THEIRS, OURS], "appended, the user's own kept"
    assert (gsettings.ours("name"), gsettings.ours("command"), gsettings.ours("binding")) == (
        "Desktop Search: quick search", COMMAND, "<Primary><Alt>space")
    assert "Bound Ctrl+Alt+Space" in done.stdout and "To undo: make uninstall-desktop" in done.stdout
    assert "scripts/bind_shortcut.py unbind" in done.stdout
    assert run_script(gsettings.env, "bind", "--command", COMMAND).returncode == 0
    assert gsettings.value(SCHEMA, "custom-keybindings") == [THEIRS, OURS], "binding again adds no second entry"

    undone = run_script(gsettings.env, "unbind")
    assert undone.returncode == 0 and "Removed" in undone.stdout
    assert gsettings.value(SCHEMA, "custom-keybindings") == [THEIRS]
    assert gsettings.ours("command") is None and gsettings.value(f"{SCHEMA}.custom-keybinding:{THEIRS}", "name") \
        == "Terminal"


def test_a_key_the_user_already_has_is_left_alone(gsettings: FakeGsettings) -> None:
    done = run_script(gsettings.env, "bind", "--command", COMMAND, "--key", "<Super>t")
    assert done.returncode == 1 and "already your shortcut “Terminal”" in done.stdout
    assert gsettings.sets() == [] and gsettings.value(SCHEMA, "custom-keybindings") == [THEIRS]


@pytest.mark.parametrize(("desktop", "steps"), [("KDE", "System Settings > Keyboard > Shortcuts"),
                                                ("XFCE", "Xfce: Keyboard > Application Shortcuts")])
def test_other_desktops_are_told_how_to_bind_it_by_hand(gsettings: FakeGsettings, desktop: str, steps: str) -> None:
    env = dict(gsettings.env, XDG_CURRENT_DESKTOP=desktop)
    for action in ("offer", "bind"):
        done = run_script(env, action, "--command", COMMAND)
        assert done.returncode == 0 and steps in done.stdout and COMMAND in done.stdout
    assert gsettings.log.read_text() == "", "gsettings is never called there"


def test_the_offer_asks_at_a_terminal_and_only_explains_elsewhere(gsettings: FakeGsettings) -> None:
    quiet = run_script(gsettings.env, "offer", "--command", COMMAND)
    assert quiet.returncode == 0 and "scripts/bind_shortcut.py bind --command" in quiet.stdout
    assert gsettings.sets() == [], "no terminal, no question: nothing bound"
    main, terminal = pty.openpty()
    asked = subprocess.Popen([sys.executable, str(SCRIPT), "offer", "--command", COMMAND], stdin=terminal,
                             stdout=subprocess.PIPE, text=True, env=gsettings.env)
    os.write(main, b"y\n")
    output, _ = asked.communicate(timeout=60)
    os.close(main)
    os.close(terminal)
    assert asked.returncode == 0 and "Bound Ctrl+Alt+Space" in output
    assert gsettings.value(SCHEMA, "custom-keybindings") == [THEIRS, OURS]


def test_make_uninstall_desktop_removes_the_key(gsettings: FakeGsettings, tmp_path: Path) -> None:
    assert run_script(gsettings.env, "bind", "--command", COMMAND).returncode == 0
    done = subprocess.run(["make", "--no-print-directory", "uninstall-desktop", f"XDG_DATA_HOME={tmp_path / 'data'}"],
                          cwd=REPO, capture_output=True, text=True, env=gsettings.env, stdin=subprocess.DEVNULL,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert gsettings.value(SCHEMA, "custom-keybindings") == [THEIRS] and "Removed" in done.stdout
