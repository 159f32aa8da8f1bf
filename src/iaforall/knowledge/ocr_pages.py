"""Text of a PDF page that has no text layer (a scan), read from its images with OCR.

A scanned page is almost always one full-page image; we read every image on the page large
enough to hold text, in the order the page draws them. The same rapidocr runtime as images in
chat (iaforall.vision.ocr), one per reading process, used synchronously here since documents are
parsed off the event loop. Image sizes are checked from the PDF's own dictionary before any
pixel is decoded.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image
from pypdf import PageObject
from pypdf.errors import DependencyError, PyPdfError
from pypdf.generic import DictionaryObject

from iaforall.knowledge.errors import DocumentTooLarge
from iaforall.vision.ocr import RapidOcr

ReadImage = Callable[[Image.Image], list[str]]
"""An OCR engine: an RGB image -> its lines of text, top to bottom."""

MIN_SIDE = 32  # icons and rules hold no text worth reading
MAX_PIXELS = 40_000_000  # an A4 page scanned at 600 dpi is ~35 MP
MAX_SIDE = 4000  # larger scans are shrunk first: OCR time grows with pixels, accuracy does not


class RapidOcrLines:
    """A rapidocr engine (iaforall.vision.ocr) as a ReadImage, made on first use in the process
    that reads (it is sent to the document reader's child before it holds anything)."""

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads  # onnxruntime's (0: every core)
        self._ocr: RapidOcr | None = None

    def __call__(self, image: Image.Image) -> list[str]:
        if self._ocr is None:
            self._ocr = RapidOcr(self.threads)
        return self._ocr.lines(image)

    def __getstate__(self) -> dict[str, object]:
        # The engine (and its lock) stays in the process that made it.
        return {"_ocr": None, "threads": self.threads}


def has_images(page: PageObject) -> bool:
    return bool(_image_names(page))


def read_scanned_page(page: PageObject, read_image: ReadImage) -> str | None:
    """The page's text, or None when none of its images could be decoded (e.g. JBIG2, which
    needs the jbig2dec program)."""
    lines: list[str] = []
    decoded = False
    for name, width, height in _image_names(page):
        if width * height > MAX_PIXELS:
            raise DocumentTooLarge(
                f"A scanned page holds a {width}x{height} image; at most "
                f"{MAX_PIXELS / 1e6:g} megapixels are read.",
                code="image_too_large",
            )
        try:
            image = page.images[name].image
        except (PyPdfError, DependencyError, NotImplementedError, OSError, ValueError, KeyError):
            continue  # this image's compression is one we cannot decode: try the others
        if image is None:
            continue
        decoded = True
        lines.extend(read_image(_prepared(image)))
    if not decoded:
        return None
    return "\n".join(line.strip() for line in lines if line.strip())


def _image_names(page: PageObject) -> list[tuple[str, int, int]]:
    """The page's own images with text-sized dimensions, as declared (nothing decoded)."""
    resources = page.get("/Resources")
    if not isinstance(resources, DictionaryObject):
        return []
    xobjects = resources.get("/XObject")
    if xobjects is None:
        return []
    found = []
    for name, reference in xobjects.get_object().items():
        xobject = reference.get_object()
        if not isinstance(xobject, DictionaryObject) or xobject.get("/Subtype") != "/Image":
            continue
        width, height = int(xobject.get("/Width", 0)), int(xobject.get("/Height", 0))
        if min(width, height) >= MIN_SIDE:
            found.append((str(name), width, height))
    return found


def _prepared(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image
