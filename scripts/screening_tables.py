"""The screening and site-condition tables of docs/clinical-safety.md, from the data files
(screening.yaml, site_rules.yaml `screening_findings`, site_conditions.yaml,
sources.yaml). scripts/clinical_safety_doc.py writes them into the guide (its blocks
`screening` and `site-conditions`) with the other generated tables; a unit test checks
that the guide contains exactly these tables. After changing the data, run

    .venv/bin/python scripts/clinical_safety_doc.py

(this script alone prints the two tables)."""

from __future__ import annotations

from collections.abc import Iterable

from needlepoint.domain.screening import questionnaire
from needlepoint.domain.site_conditions import site_conditions
from needlepoint.domain.site_safety import screening_statement
from needlepoint.domain.sources import sources


def cited(ids: Iterable[str]) -> str:
    marks = {True: "verified", "partial": "unverified ⚠️", False: "not checked ❌"}
    known = sources()
    return "; ".join(f"{known[i].citation} ({marks[known[i].verified]})" for i in ids)


def screening_table() -> str:
    q = questionnaire()
    rows = [
        "| id | question (asked of) | what the chart says on a yes | category | sources |",
        "|---|---|---|---|---|",
    ]
    for x in q.questions:
        asked = (
            " (asked of " + ", ".join(s.value for s in x.asked_when_sex) + " patients)"
            if x.asked_when_sex
            else ""
        )
        said = screening_statement(x.id, None, x.text)
        rows.append(f"| `{x.id}` | {x.text}{asked} | {said} | {x.category} | {cited(x.sources)} |")
    for rule_id, rule in q.record_rules.items():
        rows.append(
            f"| `{rule_id}` | not asked: from the date of birth | {rule.text} | {rule.category} "
            f"| {cited(rule.sources)} |"
        )
    return "\n".join(rows)


def conditions_table() -> str:
    rows = ["| id | rule | applies to | action | sources |", "|---|---|---|---|---|"]
    conditions = site_conditions()
    for rule_id, rule in conditions.rule_ids().items():
        if rule_id == "prosthetic_joint_near":
            where = "; ".join(
                f"{joint}: " + ", ".join([*near.regions, *near.muscles])
                for joint, near in conditions.prosthetic_joint.joints.items()
            )
        elif rule.regions or rule.muscles:
            where = ", ".join([*rule.regions, *rule.muscles])
        elif rule_id == "pregnancy_estim":
            where = "every site with electrical stimulation"
        else:
            where = "every muscle in the areas named at screening"
        rows.append(
            f"| `{rule_id}` | {rule.text} | {where} | {rule.action} | {cited(rule.sources)} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(screening_table())
    print()
    print(conditions_table())
