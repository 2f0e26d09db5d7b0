"""Offline OCR with RapidOCR (ONNX models inside its wheel): images and scanned PDF pages -> text.

The models load once per process, on the first page that needs them. A per-file budget
(pages, seconds, pixels) keeps one 2,000-page scan from stalling an indexing run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.core.errors import ExtractionError, OcrNeeded
from desktop_app.core.ingest.extract.base import Context, Extracted, OcrLimits, Page, capped, first_line

if TYPE_CHECKING:
    from PIL.Image import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
MIN_SIDE_PX = 24  # icons and spacer images hold no words worth reading
OCR_LONG_SIDE_PX = 2000  # RapidOCR's detector works at up to this size; larger renders only cost time


class OcrReader:
    """RapidOCR, loaded on first use. ``threads`` caps onnxruntime's threads (0: its default)."""

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads
        self._engine = None

    def read(self, image: Image) -> str:
        """The text lines RapidOCR finds in ``image``, top to bottom."""
        import numpy as np

        result = self._load()(np.asarray(image.convert("RGB")))
        return "\n".join(result.txts or ())

    def _load(self):  # noqa: ANN202 - RapidOCR has no public type for its engine
        if self._engine is None:
            from rapidocr import RapidOCR

            rapid_log = logging.getLogger("RapidOCR")  # it prints to stderr itself; send it to our log
            for handler in list(rapid_log.handlers):
                rapid_log.removeHandler(handler)
            rapid_log.propagate = True
            params: dict[str, object] = {"Global.log_level": "warning"}
            if self.threads:
                params["EngineConfig.onnxruntime.intra_op_num_threads"] = self.threads
            self._engine = RapidOCR(params=params)
        return self._engine


class OcrBudget:
    """Counts one file's OCR pages and seconds against its limits, and says what was left out."""

    def __init__(self, limits: OcrLimits) -> None:
        self.limits = limits
        self.started = time.monotonic()
        self.pages = 0
        self.stopped_at: int | None = None

    def allows(self, number: int) -> bool:
        """Whether page ``number`` may still be read; the first refusal is remembered for the note."""
        if self.stopped_at is not None:
            return False
        spent = time.monotonic() - self.started
        if self.pages >= self.limits.max_pages or spent >= self.limits.max_seconds:
            self.stopped_at = number
            return False
        self.pages += 1
        return True

    def note(self) -> str | None:
        if self.stopped_at is None:
            return None
        return (f"OCR stopped at page {self.stopped_at} (limit of {self.limits.max_pages} pages "
                f"or {self.limits.max_seconds:g} s per file)")


def fit_pixels(image: Image, max_pixels: int) -> Image:
    """Scale ``image`` down to at most ``max_pixels`` and a long side OCR can use."""
    width, height = image.size
    scale = min(1.0, (max_pixels / max(width * height, 1)) ** 0.5, OCR_LONG_SIDE_PX * 1.25 / max(width, height))
    if scale < 1.0:
        return image.resize((max(1, int(width * scale)), max(1, int(height * scale))))
    return image


def extract_image(path: Path, context: Context) -> Extracted:
    """An image file (every frame of a multi-page TIFF) read by OCR; no text found is not an error."""
    if not context.options.ocr.enabled:
        raise OcrNeeded("image: OCR is turned off in Settings")
    options = context.options
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        image = Image.open(path)
        frames = getattr(image, "n_frames", 1)
        if image.width * image.height > 4 * options.ocr.max_pixels:
            raise ExtractionError(f"image too large to read ({image.width} x {image.height} pixels)")
        if image.width * image.height > options.ocr.max_pixels:
            image.draft("RGB", (image.width // 2, image.height // 2))  # a JPEG decodes at half size at once
        budget = OcrBudget(options.ocr)
        pages = []
        for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
            if min(frame.size) < MIN_SIDE_PX or not budget.allows(number):
                continue
            context.progress(f"OCR page {number} of {frames}" if frames > 1 else "OCR")
            if frame.mode in ("P", "LA", "RGBA", "PA"):
                frame = flatten(frame)
            pages.append(Page(number, context.reader.read(fit_pixels(frame, options.ocr.max_pixels)), ocr=True))
    except ExtractionError:
        raise
    except Image.DecompressionBombError:
        raise ExtractionError("image too large to read (over Pillow's safety limit)") from None
    except UnidentifiedImageError:
        raise ExtractionError(f"not a readable {path.suffix.lower().lstrip('.').upper()} image") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise ExtractionError(f"damaged image: {first_line(error)}") from None
    notes = [n for n in (budget.note(),) if n]
    if not any(p.text.strip() for p in pages):
        notes.append("no text found in the image (OCR)")
    return replace(capped(pages, options.max_chars, unit="page" if frames > 1 else "image", notes=notes),
                   ocr_matters=True)


def flatten(image: Image) -> Image:
    """Transparent pixels on white: OCR reads dark text on a light page."""
    from PIL import Image as PilImage

    rgba = image.convert("RGBA")
    page = PilImage.new("RGBA", rgba.size, "white")
    page.alpha_composite(rgba)
    return page.convert("RGB")
