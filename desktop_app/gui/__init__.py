"""The PySide6 window. All Qt code of the app lives in this package; it only calls the core."""
