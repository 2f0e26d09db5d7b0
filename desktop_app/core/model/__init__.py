"""The embedding model: which one to use (resolve), getting it (download), and running it
(encoder, with the CPU runtime chosen by a measured probe).

Names load from their modules on first use (:mod:`desktop_app.core.lazy`): resolving a model's
name must not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from desktop_app.core import lazy

if TYPE_CHECKING:
    from desktop_app.core.model.download import ModelDownload
    from desktop_app.core.model.encoder import Encoder
    from desktop_app.core.model.encoding import Encoding
    from desktop_app.core.model.query_batch import QueryBatcher
    from desktop_app.core.model.resolve import ModelSpec, built_with

__all__ = ["Encoder", "Encoding", "ModelDownload", "ModelSpec", "QueryBatcher", "built_with"]
__getattr__, __dir__ = lazy.face(__name__, {"Encoder": "encoder", "Encoding": "encoding", "ModelDownload": "download",
                                            "ModelSpec": "resolve", "QueryBatcher": "query_batch",
                                            "built_with": "resolve"})
