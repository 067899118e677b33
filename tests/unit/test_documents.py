"""The document blocks and their PDF, without a database: every kind of block renders,
any text a clinician may type (long words, any script DejaVu Sans covers, control
characters stripped by nothing) makes a PDF rather than an error, and a drawn signature
is read as strokes however it was captured."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from needlepoint.adapters.documents.model import (
    Document,
    Facts,
    Figure,
    Heading,
    Paragraph,
    Signature,
    Table,
)
from needlepoint.adapters.documents.pdf import (
    MISSING_NOTICE,
    font_files,
    needs_shaping,
    printable,
    render_pdf,
)
from needlepoint.adapters.documents.plots import Series, measure_figure, measure_png
from needlepoint.web.ui.documents import with_unit

T0 = datetime(2026, 2, 3, 9, 30, tzinfo=UTC)


def _doc(*blocks: object) -> Document:
    return Document(
        title="Session note",
        subject="Łukasiewicz, Zoë · born 1980-05-17 · chart T-0000001",
        clinic="North PT",
        produced="Produced 2026-11-27 10:30 PST by Wendy Web",
        blocks=list(blocks),  # type: ignore[arg-type]
    )


def _series() -> Series:
    return Series(
        title="Numeric Pain Rating Scale",
        unit="/10",
        higher_is="worse",
        points=[(T0 + timedelta(weeks=k), v) for k, v in enumerate((6.0, 4.0, 2.0))],
        baseline=6.0,
        band=(6.0, 4.0),
        band_label="change smaller than the MCID (2/10)",
        sessions=[T0 + timedelta(weeks=k) for k in range(3)],
        value_range=(0.0, 10.0),
    )


def test_the_fonts_are_the_dejavu_faces_matplotlib_ships() -> None:
    files = font_files()
    assert set(files) == {"", "B"}
    assert all(p.name.startswith("DejaVuSans") and p.is_file() for p in files.values())
    assert (next(iter(files.values())).parent / "LICENSE_DEJAVU").is_file()


def test_every_kind_of_block_makes_one_pdf() -> None:
    png = measure_png(_series(), ZoneInfo("America/Los_Angeles"))
    pdf = render_pdf(
        _doc(
            Heading("Dry needling"),
            Paragraph("Depth ≥ 5 mm − within range → fine", "warning"),
            Facts([("Signed by", "Wendy Web, Licensed clinician")]),
            Table(["Muscle", "Depth"], [["Upper trapezius", "15 mm"]], caption="c"),
            Figure(png, "NPRS over time", "NPRS 6/10 to 2/10"),
            Signature("M 10 10 L 100 80 M 200 50 L 300 150", "Signature of Zoë"),
        )
    )
    assert pdf.startswith(b"%PDF-")
    assert b"DejaVu" in pdf  # the font is embedded, not assumed on the reader's machine


def _date_labels(series: Series) -> tuple[list[str], float]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = measure_figure(series, ZoneInfo("UTC"))
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    return [t.get_text() for t in ax.get_xticklabels() if t.get_text()], high - low


@pytest.mark.parametrize("points", [1, 3])
def test_a_plot_of_one_day_labels_that_day_once_and_spans_days_not_years(points: int) -> None:
    """A clinician's review: one day's scores printed "2026-11-27" six times on the axis,
    and a lone point sat in an axis from 2024 to 2030."""
    day = [(T0 + timedelta(hours=h), 5.0 + h) for h in range(points)]
    one_day = replace(_series(), points=day, sessions=[T0])
    labels, span = _date_labels(one_day)
    assert len(labels) == len(set(labels)), labels
    assert T0.date().isoformat() in labels
    assert span <= 3.0  # days


def test_a_count_that_did_not_change_is_ticked_in_whole_numbers() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    counts = Series("Active trigger points", "", "worse", [(T0, 2.0)], 2.0, None, "", [T0], None)
    fig = measure_figure(counts, ZoneInfo("UTC"))
    FigureCanvasAgg(fig).draw()
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["1", "2", "3"]  # not 1.900 … 2.100


def test_a_longer_course_keeps_distinct_dates() -> None:
    labels, span = _date_labels(_series())  # three weekly scores
    assert len(labels) == len(set(labels)) >= 2
    assert 14 <= span <= 20


def test_the_plot_draws_the_score_line_in_colour() -> None:
    png = measure_png(_series(), ZoneInfo("UTC"))
    image = Image.open(io.BytesIO(png)).convert("RGB")
    blue = sum(
        1 for r, g, b in image.get_flattened_data() if r < 60 and 60 < g < 130 and 140 < b < 210
    )
    assert blue > 200


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(
        st.characters(blacklist_categories=("Cs", "Cc", "Co", "Cn")), min_size=0, max_size=400
    ),
    long_word=st.text(st.sampled_from("abcdefghij0123456789/-"), min_size=1, max_size=300),
)
def test_any_typed_text_makes_a_pdf(text: str, long_word: str) -> None:
    pdf = render_pdf(
        _doc(
            Heading(text or "—"),
            Paragraph(f"{text} {long_word}"),
            Facts([("Subjective", text), ("Plan", long_word)]),
            Table(["Muscle", "Notes"], [[long_word, text], [text, long_word]], widths=[1, 3]),
        )
    )
    assert pdf.startswith(b"%PDF-")


@given(st.text(max_size=200))
def test_any_signature_text_is_read_without_error(path: str) -> None:
    strokes = Signature(path, "s").strokes()
    assert all(len(stroke) >= 1 for stroke in strokes)


def test_a_signature_path_is_read_as_strokes() -> None:
    strokes = Signature("M 1 2 L 3 4 L 5 6 M 7 8 L 9 10", "s").strokes()
    assert strokes == [[(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)], [(7.0, 8.0), (9.0, 10.0)]]
    assert Signature("M 1 2 L x y", "s").strokes() == [[(1.0, 2.0)]]  # read as far as it goes


def test_units_are_spaced_but_fractions_and_angles_stay_attached() -> None:
    assert with_unit(25, "mm") == "25\u00a0mm"  # a space that never breaks the line
    assert with_unit(34.0, "%") == "34\u00a0%"
    assert with_unit(4, "/10") == "4/10"
    assert with_unit(59, "°") == "59°"
    assert with_unit(0.25, "") == "0.25"
    assert with_unit(None, "mm") == "—"


def test_a_character_the_font_cannot_draw_is_replaced_and_the_document_says_so() -> None:
    doc = _doc(Facts([("Patient", "山田 太郎")]), Paragraph("Ελένη Дмитрий محمد"))
    shown, missing = printable(doc)
    assert missing == {"山", "田", "太", "郎"}
    assert shown.blocks[0] == Paragraph(MISSING_NOTICE, "warning")
    assert shown.blocks[1] == Facts([("Patient", "?? ??")])
    assert shown.blocks[2] == Paragraph("Ελένη Дмитрий محمد")  # Greek, Cyrillic, Arabic kept


def test_a_document_the_font_can_draw_has_no_notice() -> None:
    doc = _doc(Paragraph("Łukasiewicz, Zoë: depth ≥ 5 mm"))
    shown, missing = printable(doc)
    assert not missing
    assert shown == dataclasses.replace(doc)


def test_only_right_to_left_or_marked_text_is_shaped() -> None:
    assert not needs_shaping(_doc(Paragraph("Łukasiewicz, Zoë: depth ≥ 5 mm; Дмитрий, Ελένη")))
    assert needs_shaping(_doc(Facts([("Patient", "محمد")])))
    assert needs_shaping(_doc(Table(["Name"], [["שרה"]])))
    assert needs_shaping(_doc(Paragraph("Zoe\u0308")))  # e + combining diaeresis


def test_an_instruments_score_is_written_with_its_unit_spaced() -> None:
    from needlepoint.domain.instruments import get

    assert get("ndi").format(40) == "40 %"
    assert get("nprs").format(4) == "4/10"
    assert get("ndi").format(None) == "not scorable"
