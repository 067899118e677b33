"""A document's content as plain blocks, the one source of its HTML and PDF forms."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Heading:
    text: str
    level: int = 2  # 2: a section; 3: a part of a section


@dataclass(frozen=True, slots=True)
class Paragraph:
    text: str
    style: str = "normal"  # normal | hint (small, grey) | strong | warning


@dataclass(frozen=True, slots=True)
class Facts:
    """Label-value pairs (a definition list)."""

    rows: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    widths: list[int] | None = None  # relative column widths for the PDF
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Figure:
    """A picture (PNG bytes) with its caption; `alt` says what it shows in words."""

    png: bytes
    caption: str
    alt: str


@dataclass(frozen=True, slots=True)
class Signature:
    """A signature drawn on screen: SVG path data ("M x y L x y …") on a canvas of
    `width` × `height` pixels, as the consent form captures it."""

    path: str
    caption: str
    width: int = 640
    height: int = 200

    def strokes(self) -> list[list[tuple[float, float]]]:
        """The drawing as strokes of points (each "M" starts one; "L" continues it).
        Anything else in the path ends the drawing: it is shown as far as it is read."""
        out: list[list[tuple[float, float]]] = []
        words = self.path.split()
        i = 0
        while i + 2 < len(words) and words[i] in ("M", "L"):
            try:
                point = (float(words[i + 1]), float(words[i + 2]))
            except ValueError:
                break
            if words[i] == "M" or not out:
                out.append([point])
            else:
                out[-1].append(point)
            i += 3
        return out


Block = Heading | Paragraph | Facts | Table | Figure | Signature


@dataclass(frozen=True, slots=True)
class Document:
    """One document: its title, who and what it is about (printed on every page), its
    blocks in order, and a closing line saying who produced it and when."""

    title: str
    subject: str  # the patient on every page: "Lovelace, Ada · born 1980-05-17 · chart 000123"
    clinic: str
    produced: str  # "Produced 2026-11-27 10:30 PST by …"
    blocks: list[Block] = field(default_factory=list)
    filename: str = "document.pdf"
