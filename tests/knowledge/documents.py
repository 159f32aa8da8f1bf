"""Documents the tests make themselves, in English and French, with the real libraries that
write each format (reportlab, python-docx, python-pptx, openpyxl, Pillow)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw

from tests.vision.images import font

ENGLISH = "The lighthouse keeper logs every passing ship in the harbour register."
FRENCH = "Le gardien du phare note chaque navire qui passe dans le registre du port, même l'été."
FRENCH_2 = "Les cotisations de l'association sont réglées avant le 31 décembre, à la trésorière."
TABLE = [
    ("Item", "Quantity", "Price"),
    ("Lantern", "12", "4.50"),
    ("Rope", "3", "19.90"),
]
SCAN_ENGLISH = "Harbour opening hours change in winter"
SCAN_FRENCH = "Le port ferme à midi le dimanche"


def text_pdf(path: Path, pages: list[list[str]] | None = None) -> Path:
    """A PDF with a real text layer: by default English, French, then a table, one per page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import Table

    canvas = Canvas(str(path), pagesize=A4)
    if pages is None:
        pages = [[ENGLISH], [FRENCH, FRENCH_2], []]
        bookmarks = [("Harbour", 0), ("Règles", 1), ("Prices", 1)]  # title, outline level
        for number, lines in enumerate(pages):
            title, level = bookmarks[number]
            canvas.bookmarkPage(title)
            canvas.addOutlineEntry(title, title, level=level)
            _lines(canvas, lines)
            if number == 2:
                table = Table(TABLE)
                table.wrapOn(canvas, 400, 200)
                table.drawOn(canvas, 72, 600)
            canvas.showPage()
    else:
        for lines in pages:
            _lines(canvas, lines)
            canvas.showPage()
    canvas.save()
    return path


def _lines(canvas: object, lines: list[str]) -> None:
    for i, line in enumerate(lines):
        canvas.drawString(72, 760 - 18 * i, line)  # type: ignore[attr-defined]


def scan_image(*lines: str, size: tuple[int, int] = (1240, 1754)) -> Image.Image:
    """A page as a 150 dpi scan would give it: text drawn as pixels, nothing else."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((100, 150 + 80 * i), line, font=font(40), fill="black")
    return image


def scanned_pdf(path: Path, *pages: tuple[str, ...]) -> Path:
    """An image-only PDF (no text layer), one scanned page per tuple of lines."""
    images = [scan_image(*lines) for lines in pages or ((SCAN_ENGLISH, SCAN_FRENCH),)]
    images[0].save(path, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return path


def docx(path: Path) -> Path:
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading("Harbour rules", level=1)
    document.add_paragraph(ENGLISH)
    document.add_heading("Règles en français", level=2)
    document.add_paragraph(FRENCH)
    document.add_heading("Prices", level=1)
    table = document.add_table(rows=0, cols=3)
    for row in TABLE:
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = value
    document.save(str(path))
    return path


def pptx(path: Path) -> Path:
    from pptx import Presentation

    presentation = Presentation()
    for title, body in (("Welcome", ENGLISH), ("Bienvenue", FRENCH)):
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    presentation.save(str(path))
    return path


def xlsx(path: Path) -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Prices"
    for row in TABLE:
        sheet.append(row)
    sheet.append(["Buoy", 2, 7.25, None, dt.date(2026, 3, 1)])  # real numbers and a date
    notes = workbook.create_sheet("Notes")
    notes.append(["Remarque"])
    notes.append([FRENCH])
    workbook.save(str(path))
    return path


def zip_bomb_docx(path: Path, inflated_mb: int = 400) -> Path:
    """A real DOCX whose document.xml inflates to `inflated_mb` MB of spaces (~0.4 MB zipped)."""
    buffer = io.BytesIO()
    docx(Path(path.parent / "seed.docx"))
    with (
        zipfile.ZipFile(path.parent / "seed.docx") as seed,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bomb,
    ):
        for item in seed.infolist():
            if item.filename != "word/document.xml":
                bomb.writestr(item, seed.read(item))
        with bomb.open("word/document.xml", "w", force_zip64=True) as member:
            block = b" " * 1_000_000
            for _ in range(inflated_mb):
                member.write(block)
    path.write_bytes(buffer.getvalue())
    return path
