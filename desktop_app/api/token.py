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

from desktop_app.core import DesktopSearchError, UsageError, readable

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
    if not path.exists():
        try:
            _create(path, secrets.token_urlsafe(32))
        except FileExistsError:
            pass  # another server on this index made it first: both use that one
        except OSError as error:
            raise DesktopSearchError(f"could not keep the API token in {path}: {readable(error)}") from None
    os.chmod(path, 0o600)  # a copy from elsewhere may have come with wider rights
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < MIN_TOKEN_CHARS:
        raise DesktopSearchError(f"the API token in {path} is shorter than {MIN_TOKEN_CHARS} characters: delete "
                                 "the file and start again for a new one")
    return ApiToken(value, str(path))


def _create(path: Path, value: str) -> None:
    """Write the token whole to a private temporary file, then link it into place: a full disk leaves no
    empty ``api-token`` behind, and of two servers starting at once the first to link wins."""
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(value + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
