"""The API's bearer token: ``DESKTOP_SEARCH_API_TOKEN``, else one generated once and kept in the index folder.

The file (``api-token``, mode 0600) sits beside the index it opens, so every server on that index
(``desktop-search serve``, the window's) and every script the user gives it agree on one token.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from desktop_app.core import DesktopSearchError, UsageError

TOKEN_ENV = "DESKTOP_SEARCH_API_TOKEN"
TOKEN_FILE = "api-token"
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class ApiToken:
    value: str
    source: str  # the environment variable's name, or the file's path

    @property
    def from_env(self) -> bool:
        return self.source == TOKEN_ENV


def api_token(index_dir: Path, env: Mapping[str, str] | None = None) -> ApiToken:
    """The token requests must carry; creates ``index_dir/api-token`` (mode 0600) the first time."""
    env = os.environ if env is None else env
    if env.get(TOKEN_ENV):
        value = env[TOKEN_ENV].strip()
        if len(value) < MIN_TOKEN_CHARS:
            raise UsageError(f"{TOKEN_ENV} is too short ({len(value)} characters): use at least {MIN_TOKEN_CHARS}, "
                             "or unset it to use a generated one")
        return ApiToken(value, TOKEN_ENV)
    path = Path(index_dir) / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)  # a copy from elsewhere may have come with wider rights
        value = path.read_text(encoding="utf-8").strip()
        if len(value) < MIN_TOKEN_CHARS:
            raise DesktopSearchError(f"the API token in {path} is shorter than {MIN_TOKEN_CHARS} characters: delete "
                                     "the file and start again for a new one") from None
        return ApiToken(value, str(path))
    value = secrets.token_urlsafe(32)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(value + "\n")
    return ApiToken(value, str(path))
