"""The Linux desktop launcher: entry, icons, the gui-script and `make install-desktop`."""

from __future__ import annotations

import configparser
import os
import shlex
import struct
import subprocess
import sysconfig
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import tomllib
from conftest import ascii_locale

from desktop_app.gui import app

REPO = Path(__file__).resolve().parents[1]
ENTRY = REPO / "resources" / "desktop-search.desktop"
ICONS = REPO / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
# The install puts every file under the data home at the same relative path it has here.
ICON_FILES = [f"icons/hicolor/{n}x{n}/apps/desktop-search.png" for n in SIZES] + [
    "icons/hicolor/scalable/apps/desktop-search.svg"
]
MAIN_CATEGORIES = {"AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics",
                   "Network", "Office", "Science", "Settings", "System", "Utility"}


def read_entry(path: Path) -> dict[str, str]:
    """The [Desktop Entry] group, keys kept case-sensitive as the spec requires."""
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which the PNG format puts first."""
    signature, _, chunk, width, height = struct.unpack(">8sI4sII", path.read_bytes()[:24])
    assert signature == b"\x89PNG\r\n\x1a\n" and chunk == b"IHDR"
    return width, height


def make(target: str, data_home: Path) -> str:
    """Run a make target as a script would (no terminal), on no known desktop: the user's keys are never touched.
    The locale claims ASCII, with Python's UTF-8 mode off, as on the CI machine where a "▸" once failed it."""
    env = ascii_locale({name: value for name, value in os.environ.items() if name != "XDG_CURRENT_DESKTOP"})
    return subprocess.run(["make", "--no-print-directory", target, f"XDG_DATA_HOME={data_home}"], cwd=REPO, check=True,
                          capture_output=True, encoding="ascii", timeout=600, env=env,
                          stdin=subprocess.DEVNULL).stdout


def test_entry_declares_a_graphical_application() -> None:
    entry = read_entry(ENTRY)
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Desktop Search"
    assert entry["GenericName"] and entry["Comment"]
    assert entry["Exec"] == '"@BIN@/desktop-search-gui" %F'
    assert entry["TryExec"] == "@BIN@/desktop-search-gui"
    assert entry["Icon"] == "desktop-search"
    assert entry["Terminal"] == "false"
    categories = entry["Categories"].split(";")
    assert categories[-1] == "" and len(MAIN_CATEGORIES.intersection(categories)) == 1
    assert entry["Keywords"].endswith(";") and "search" in entry["Keywords"].split(";")


def test_entry_matches_the_window_the_app_opens() -> None:
    """Docks group the window under the launcher only when both names agree."""
    assert read_entry(ENTRY)["StartupWMClass"] == "desktop-search"
    assert 'setDesktopFileName("desktop-search")' in Path(app.__file__).read_text(encoding="utf-8")


@pytest.mark.parametrize("size", SIZES)
def test_png_icon_has_its_nominal_size(size: int) -> None:
    assert png_size(ICONS / f"hicolor/{size}x{size}/apps/desktop-search.png") == (size, size)


def test_svg_icon_is_square_and_its_scalable_copy_is_current() -> None:
    source = ICONS / "desktop-search.svg"
    root = ET.parse(source).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    _, _, width, height = map(float, root.get("viewBox").split())
    assert width == height
    assert (ICONS / "hicolor/scalable/apps/desktop-search.svg").read_bytes() == source.read_bytes()


def test_pyproject_declares_the_gui_script() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["gui-scripts"]["desktop-search-gui"] == "desktop_app.gui.app:run"
    assert project["scripts"]["desktop-search"] == "desktop_app.cli:main"


def test_installed_gui_script_runs_the_window() -> None:
    """`pip install -e .` has been re-run since the gui-script was declared."""
    assert (Path(sysconfig.get_path("scripts")) / "desktop-search-gui").is_file()
    assert entry_points(group="gui_scripts")["desktop-search-gui"].load() is app.run


def test_make_install_and_uninstall_desktop(tmp_path: Path) -> None:
    output = make("install-desktop", tmp_path)
    assert "desktop-search-gui\" --quick" in output, "says how to bind a key to the quick search box"
    installed = read_entry(tmp_path / "applications/desktop-search.desktop")
    program, files = shlex.split(installed["Exec"])
    assert files == "%F" and installed["TryExec"] == program
    assert Path(program).is_absolute() and Path(program).name == "desktop-search-gui"
    assert Path(program).is_file() and Path(program).stat().st_mode & 0o111
    for icon in ICON_FILES:
        assert (tmp_path / icon).read_bytes() == (REPO / "resources" / icon).read_bytes()

    make("uninstall-desktop", tmp_path)
    assert not (tmp_path / "applications/desktop-search.desktop").exists()
    assert not [icon for icon in ICON_FILES if (tmp_path / icon).exists()]
