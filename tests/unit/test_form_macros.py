"""Form macros write extra attributes through an escaping filter: a value cannot break
out of its attribute, and a string of raw attributes is refused rather than escaped into
nonsense (the `autocomplete=&#34;off&#34;` defect)."""

from __future__ import annotations

import pytest

from needlepoint.web.ui.forms import templates


def field(**kwargs: object) -> str:
    macros = templates.env.get_template("_macros.html").module
    return str(macros.field("given_name", "Given name", **kwargs))  # type: ignore[attr-defined]


def test_an_attribute_is_written_as_an_attribute() -> None:
    html = field(attrs={"autocomplete": "off"})
    assert ' autocomplete="off"' in html
    assert "&#34;" not in html


def test_an_attribute_value_cannot_break_out() -> None:
    html = field(attrs={"placeholder": '"><script>alert(1)</script>'})
    assert "<script>" not in html
    assert 'placeholder="&#34;&gt;&lt;script&gt;' in html


def test_a_string_of_raw_attributes_is_refused() -> None:
    with pytest.raises(AttributeError):
        field(attrs='autocomplete="off"')


def test_analytics_labels_read_as_words() -> None:
    from needlepoint.web.ui.analytics import readable

    assert readable("co_intervention") == "Co-intervention"
    assert readable("low_back_pain", {"low_back_pain": "Low back pain"}) == "Low back pain"
    assert readable("lateral_epicondyle") == "Lateral epicondyle"
    assert readable("needling alone") == "Needling alone"
    assert readable("Ahmed Fernandes, PT") == "Ahmed Fernandes, PT"
    assert readable("overall") == "All episodes"
