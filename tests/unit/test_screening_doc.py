"""docs/clinical-safety.md shows the screening questions, the record rules and the site
conditions exactly as the data files say (regenerate with scripts/screening_tables.py)."""

from __future__ import annotations

import runpy
from pathlib import Path

from needlepoint.domain.screening import questionnaire
from needlepoint.domain.sources import sources

ROOT = Path(__file__).parents[2]


def test_the_guide_holds_the_screening_and_site_condition_tables_generated_from_data() -> None:
    tables = runpy.run_path(str(ROOT / "scripts" / "screening_tables.py"))
    doc = (ROOT / "docs" / "clinical-safety.md").read_text()
    assert tables["screening_table"]() in doc, "run scripts/screening_tables.py"
    assert tables["conditions_table"]() in doc, "run scripts/screening_tables.py"


def test_every_screening_question_and_record_rule_cites_a_known_source() -> None:
    q = questionnaire()
    known = sources()
    cited = [*(x.sources for x in q.questions), *(r.sources for r in q.record_rules.values())]
    assert all(ids and set(ids) <= set(known) for ids in cited)
