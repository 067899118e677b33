"""Analgesic use: the share of episodes in which analgesic drug-days per week fell from
the first to the last log entry of the episode (each drug's latest entry counts), overall
and for opioids alone. Episodes with a first entry but no later one are counted as
missing a follow-up, never silently dropped."""

from __future__ import annotations

from dataclasses import dataclass

from needlepoint.analytics.responders import Workspace, wilson


@dataclass(frozen=True, slots=True)
class MedicationRow:
    drugs: str  # "all analgesics" or "opioids"
    episodes_with_use: int
    complete: int  # with a later log entry
    missing: int
    fell: int
    stopped: int  # fell to 0 drug-days
    share_fell: float | None
    ci_low: float | None
    ci_high: float | None


def medication(ws: Workspace) -> list[MedicationRow]:
    """All analgesics, then opioids alone."""
    out = []
    for label, where in (("all analgesics", "true"), ("opioids", "drug_class = 'opioid'")):
        row = ws.one(f"""
WITH e AS (
  SELECT episode_id, any_value(log_days) AS log_days, sum(before_days) AS before_days,
         sum(after_days) AS after_days
  FROM analgesic_days WHERE {where} AND before_days > 0 GROUP BY episode_id
)
SELECT count(*), count(*) FILTER (WHERE log_days >= 2),
       count(*) FILTER (WHERE log_days >= 2 AND after_days < before_days),
       count(*) FILTER (WHERE log_days >= 2 AND after_days = 0)
FROM e
""")
        n, complete, fell, stopped = (int(x) for x in row)
        lo, hi = wilson(fell, complete)
        out.append(
            MedicationRow(
                drugs=label,
                episodes_with_use=n,
                complete=complete,
                missing=n - complete,
                fell=fell,
                stopped=stopped,
                share_fell=fell / complete if complete else None,
                ci_low=lo,
                ci_high=hi,
            )
        )
    return out
