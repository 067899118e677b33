"""A document as a PDF, written with fpdf2 (pure Python: nothing to install beside the
locked wheels, works offline on Linux and macOS).

Fonts: fpdf2's built-in PDF fonts cover Latin-1 only (no "≥", "−", "→" or most names
outside Western Europe), so the text is set in DejaVu Sans, embedded in the file. The
TTF files are the ones matplotlib ships in its `mpl-data/fonts/ttf/` (matplotlib is
already a locked dependency; DejaVu's licence, `LICENSE_DEJAVU`, is beside them): no
system font and no download is needed. Only the glyphs used are embedded (subsetting).
Text is shaped with HarfBuzz (`uharfbuzz`, a locked binary wheel for Linux and macOS), so
right-to-left and joined scripts (Arabic, Hebrew) read as written. DejaVu Sans has no
Chinese, Japanese or Korean glyphs: a character the font cannot show is replaced by "?"
and the document opens with a notice saying so (the print view, in the browser's fonts,
shows it) - a name is never silently shortened."""

from __future__ import annotations

import dataclasses
import io
import unicodedata
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import matplotlib
import PIL.Image
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from needlepoint.adapters.documents.model import (
    Block,
    Document,
    Facts,
    Figure,
    Heading,
    Paragraph,
    Signature,
    Table,
)

FAMILY = "DejaVu"
_FACES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
_INK = (27, 31, 36)
_GREY = (90, 96, 104)
_WARN = (164, 22, 26)


@cache
def font_files() -> dict[str, Path]:
    """The DejaVu Sans faces matplotlib ships (regular and bold: all the documents use)."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    found = {style: folder / name for style, name in _FACES.items()}
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:  # a broken matplotlib install: say which file, not a glyph error later
        raise FileNotFoundError(f"the PDF fonts are missing: {', '.join(missing)}")
    return found


@cache
def _covered() -> frozenset[int]:
    """The code points every face of the font can draw."""
    faces = []
    for path in font_files().values():
        with TTFont(str(path), lazy=True) as font:
            faces.append(frozenset(font.getBestCmap()))
    return frozenset.intersection(*faces)


MISSING_NOTICE = (
    "Some characters of this record cannot be shown in this PDF's font and are replaced "
    'by "?": read them in the print view, or in the record itself.'
)


def _shown(text: str, missing: set[str]) -> str:
    covered = _covered()
    out = []
    for ch in text:
        if ch in "\n\t" or ord(ch) in covered:
            out.append(ch)
        else:
            missing.add(ch)
            out.append("?")
    return "".join(out)


def _texts(document: Document) -> Iterator[str]:
    yield from (document.title, document.subject, document.clinic, document.produced)
    for b in document.blocks:
        if isinstance(b, Heading | Paragraph):
            yield b.text
        elif isinstance(b, Facts):
            for k, v in b.rows:
                yield k
                yield v
        elif isinstance(b, Table):
            yield from b.header
            for row in b.rows:
                yield from row
            yield b.caption
        else:
            yield b.caption


def needs_shaping(document: Document) -> bool:
    """Whether any text is right-to-left or carries combining marks (Arabic, Hebrew,
    decomposed accents): text that reads wrongly unless shaped."""
    return any(
        unicodedata.bidirectional(ch) in ("R", "AL") or unicodedata.category(ch) == "Mn"
        for text in _texts(document)
        for ch in text
        if ord(ch) > 0x2FF
    )


def printable(document: Document) -> tuple[Document, set[str]]:
    """The document with every character the font cannot draw replaced by "?", and the
    characters replaced."""
    missing: set[str] = set()

    def block(b: Block) -> Block:
        if isinstance(b, Heading | Paragraph):
            return dataclasses.replace(b, text=_shown(b.text, missing))
        if isinstance(b, Facts):
            return Facts([(_shown(k, missing), _shown(v, missing)) for k, v in b.rows])
        if isinstance(b, Table):
            return dataclasses.replace(
                b,
                header=[_shown(h, missing) for h in b.header],
                rows=[[_shown(v, missing) for v in row] for row in b.rows],
                caption=_shown(b.caption, missing),
            )
        return dataclasses.replace(b, caption=_shown(b.caption, missing))

    shown = dataclasses.replace(
        document,
        title=_shown(document.title, missing),
        subject=_shown(document.subject, missing),
        clinic=_shown(document.clinic, missing),
        produced=_shown(document.produced, missing),
        blocks=[block(b) for b in document.blocks],
    )
    if missing:
        shown = dataclasses.replace(
            shown, blocks=[Paragraph(MISSING_NOTICE, "warning"), *shown.blocks]
        )
    return shown, missing


class _Pdf(FPDF):
    """A4 pages with the clinic and the patient at the top and the page count below."""

    def __init__(self, document: Document) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.document = document
        for style, path in font_files().items():
            self.add_font(FAMILY, style, str(path))
        if needs_shaping(document):  # HarfBuzz: Arabic and Hebrew read as written
            self.set_text_shaping(True)  # (only then: shaping every line costs ~5×)
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(auto=True, margin=18)
        self.set_title(document.title)
        self.set_author(document.clinic)
        self.set_creator("Needlepoint")
        self.alias_nb_pages()

    def header(self) -> None:
        self.set_font(FAMILY, "", 8)
        self.set_text_color(*_GREY)
        self.cell(0, 4, self.document.clinic, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.cell(0, 4, self.document.subject, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(*_GREY)
        self.line(self.l_margin, self.get_y() + 1, self.w - self.r_margin, self.get_y() + 1)
        self.ln(4)
        self.set_text_color(*_INK)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(FAMILY, "", 7.5)
        self.set_text_color(*_GREY)
        self.cell(0, 4, self.document.produced, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.cell(
            0,
            4,
            f"{self.document.title} · page {self.page_no()} of {{nb}}",
            align="R",
        )
        self.set_text_color(*_INK)


def render_pdf(document: Document) -> bytes:
    """The document as PDF bytes."""
    document, _missing = printable(document)
    pdf = _Pdf(document)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    pdf.set_font(FAMILY, "B", 16)
    pdf.multi_cell(width, 8, document.title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    for block in document.blocks:
        if isinstance(block, Heading):
            _heading(pdf, block, width)
        elif isinstance(block, Paragraph):
            _paragraph(pdf, block, width)
        elif isinstance(block, Facts):
            _facts(pdf, block, width)
        elif isinstance(block, Table):
            _table(pdf, block)
        elif isinstance(block, Figure):
            _figure(pdf, block, width)
        else:
            _signature(pdf, block, width)
    return bytes(pdf.output())


def _heading(pdf: FPDF, block: Heading, width: float) -> None:
    size = 12.5 if block.level <= 2 else 10.5
    if pdf.get_y() > pdf.h - 45:  # no heading alone at the foot of a page
        pdf.add_page()
    pdf.ln(3 if block.level <= 2 else 1.5)
    pdf.set_font(FAMILY, "B", size)
    pdf.multi_cell(width, size * 0.5, block.text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)


def _paragraph(pdf: FPDF, block: Paragraph, width: float) -> None:
    style, size, colour = {
        "hint": ("", 8.0, _GREY),
        "strong": ("B", 9.5, _INK),
        "warning": ("B", 9.5, _WARN),
    }.get(block.style, ("", 9.5, _INK))
    pdf.set_font(FAMILY, style, size)
    pdf.set_text_color(*colour)
    pdf.multi_cell(width, size * 0.5, block.text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*_INK)
    pdf.ln(1.2)


def _facts(pdf: FPDF, block: Facts, width: float) -> None:
    label_w = min(48.0, width * 0.32)
    for label, value in block.rows:
        pdf.set_font(FAMILY, "B", 9)
        lines = pdf.multi_cell(width - label_w, 4.6, value or "—", dry_run=True, output="LINES")
        count = len(lines) if isinstance(lines, list) else 1
        if pdf.get_y() + 4.6 * max(1, count) > pdf.h - pdf.b_margin:
            pdf.add_page()
        top = pdf.get_y()
        pdf.multi_cell(label_w, 4.6, label, align="L", new_x=XPos.RIGHT, new_y=YPos.TOP)
        pdf.set_font(FAMILY, "", 9)
        pdf.multi_cell(
            width - label_w, 4.6, value or "—", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        pdf.set_y(max(pdf.get_y(), top + 4.6))
    pdf.ln(1.5)


def _table(pdf: FPDF, block: Table) -> None:
    pdf.set_font(FAMILY, "", 8)
    widths = tuple(block.widths) if block.widths else None
    with pdf.table(
        col_widths=widths,
        text_align="LEFT",
        line_height=4.2,
        first_row_as_headings=True,
        headings_style=FontFace(emphasis="BOLD", fill_color=(236, 239, 243)),
        repeat_headings=1,
        padding=1,
    ) as table:
        heading = table.row()
        for cell in block.header:
            heading.cell(cell)
        for values in block.rows:
            row = table.row()
            for value in values:
                row.cell(value)
    if block.caption:
        _paragraph(pdf, Paragraph(block.caption, "hint"), pdf.w - pdf.l_margin - pdf.r_margin)
    pdf.ln(1.5)


def _figure(pdf: FPDF, block: Figure, width: float) -> None:
    shown = min(width, 150.0)
    with PIL.Image.open(io.BytesIO(block.png)) as picture:
        height = shown * picture.height / picture.width
    if pdf.get_y() + height + 12 > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.image(io.BytesIO(block.png), w=shown, h=height, x=pdf.l_margin, alt_text=block.alt)
    _paragraph(pdf, Paragraph(block.caption, "hint"), width)


def _signature(pdf: FPDF, block: Signature, width: float) -> None:
    box_w = min(width, 90.0)
    box_h = box_w * block.height / block.width
    if pdf.get_y() + box_h + 10 > pdf.h - pdf.b_margin:
        pdf.add_page()
    x0, y0 = pdf.l_margin, pdf.get_y()
    scale = box_w / block.width
    pdf.set_draw_color(*_INK)
    pdf.set_line_width(0.45)
    for stroke in block.strokes():
        points = [(x0 + x * scale, y0 + y * scale) for x, y in stroke]
        if len(points) == 1:
            points.append((points[0][0] + 0.2, points[0][1]))
        pdf.polyline(points)
    pdf.set_draw_color(*_GREY)
    pdf.set_line_width(0.2)
    pdf.line(x0, y0 + box_h, x0 + box_w, y0 + box_h)
    pdf.set_y(y0 + box_h + 1)
    _paragraph(pdf, Paragraph(block.caption, "hint"), width)
