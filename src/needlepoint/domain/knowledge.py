"""The clinical knowledge files of `domain/data/`, loaded together.

Each file is parsed and checked once per process on first use; a server loads them all
at start-up so that no clinician's first request pays for parsing YAML.
"""

from __future__ import annotations

from needlepoint.domain.benefits import benefits
from needlepoint.domain.billing import billing_data
from needlepoint.domain.catalogue import adverse_event_benchmarks, conditions, muscle_ids
from needlepoint.domain.consent import templates
from needlepoint.domain.credentials import jurisdictions
from needlepoint.domain.instruments import library, library_version
from needlepoint.domain.screening import questionnaire
from needlepoint.domain.site_conditions import site_conditions
from needlepoint.domain.site_safety import site_rules
from needlepoint.domain.sources import sources


def load_all() -> None:
    """Parse and check every knowledge file now (each is cached for the process)."""
    for load in (
        sources,
        conditions,
        muscle_ids,
        adverse_event_benchmarks,
        library,
        library_version,
        benefits,
        billing_data,
        templates,
        jurisdictions,
        questionnaire,
        site_conditions,
        site_rules,
    ):
        load()
