"""Before Qt starts on Linux/X11: name the system libraries its xcb plugin needs and lacks.

Without them Qt prints "Could not load the Qt platform plugin "xcb"" and aborts the process,
which a user cannot act on. Each library is opened with the system loader first; the missing
ones are named by the Debian/Ubuntu package that provides them.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

# library soname -> Debian/Ubuntu package (Qt 6's xcb platform plugin and its EGL integration)
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
}


def uses_xcb(env: Mapping[str, str]) -> bool:
    """True when Qt will pick its X11 (xcb) plugin."""
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0] == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def missing_packages(load: Callable[[str], object] = ctypes.CDLL) -> list[str]:
    missing = []
    for library, package in XCB_LIBRARIES.items():
        try:
            load(library)
        except OSError:
            missing.append(package)
    return missing


def platform_problem(env: Mapping[str, str] | None = None, load: Callable[[str], object] = ctypes.CDLL,
                     system: str = sys.platform) -> str | None:
    """One readable line when the window cannot start here, else None."""
    env = os.environ if env is None else env
    if not system.startswith("linux"):
        return None
    if not env.get("QT_QPA_PLATFORM") and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return ("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset); "
                "use the command line (`desktop-search --help`) or run it inside a desktop session")
    if not uses_xcb(env):
        return None
    missing = missing_packages(load)
    if missing:
        return (f"the window needs {len(missing)} system librar{'y' if len(missing) == 1 else 'ies'} that "
                f"{'is' if len(missing) == 1 else 'are'} missing; install them with: "
                f"sudo apt-get install {' '.join(missing)}")
    return None
