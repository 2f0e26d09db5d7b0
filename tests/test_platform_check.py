"""The window's start on a bare Linux: missing xcb libraries are one readable line, not Qt's abort."""

from __future__ import annotations

import os
import subprocess
import sys

from desktop_app.gui.platform_check import XCB_LIBRARIES, platform_problem


def loader_without(*absent: str):
    def load(name: str) -> object:
        if name in absent:
            raise OSError(f"{name}: cannot open shared object file")
        return object()
    return load


def test_missing_xcb_libraries_are_named_by_package() -> None:
    env = {"DISPLAY": ":0"}
    problem = platform_problem(env, loader_without("libxcb-cursor.so.0", "libxkbcommon-x11.so.0"), "linux")
    assert problem == ("the window needs 2 system libraries that are missing; install them with: "
                       "sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0")


def test_every_library_qt_needs_is_listed() -> None:
    assert len(XCB_LIBRARIES) >= 10 and {"libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0"} <= set(
        XCB_LIBRARIES.values())


def test_nothing_is_said_when_all_is_there_or_qt_uses_another_platform() -> None:
    assert platform_problem({"DISPLAY": ":0"}, loader_without(), "linux") is None
    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}, loader_without("libEGL.so.1"), "linux") is None
    assert platform_problem({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, loader_without("libEGL.so.1"),
                            "linux") is None
    assert platform_problem({}, loader_without("libEGL.so.1"), "win32") is None


def test_no_display_is_explained() -> None:
    assert "no display" in platform_problem({}, loader_without(), "linux")


def test_the_gui_script_prints_one_line_and_exits_1_without_a_display(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", "from desktop_app.gui.app import run; raise SystemExit(run([]))"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("desktop-search: no display") and len(done.stderr.strip().splitlines()) == 1
