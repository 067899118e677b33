"""Regenerate the data-driven parts of docs/clinical-safety.md from domain/data/*.yaml.

The prose of the guide is written by hand; the tables between the markers
`<!-- generated: NAME -->` and `<!-- /generated: NAME -->` are produced here from the rule
data, so the guide cannot drift from what the software does. A unit test fails when the
file differs from what this script would write.

    .venv/bin/python scripts/clinical_safety_doc.py          # rewrite the file
    .venv/bin/python scripts/clinical_safety_doc.py --check  # exit 1 when out of step
"""

from __future__ import annotations

import re
import runpy
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from needlepoint.domain.billing import billing_data
from needlepoint.domain.catalogue import conditions, muscles
from needlepoint.domain.screening import questionnaire
from needlepoint.domain.site_conditions import site_conditions
from needlepoint.domain.site_safety import site_rules
from needlepoint.domain.sources import caveat, sources

DOC = Path(__file__).resolve().parents[1] / "docs" / "clinical-safety.md"


def cited(ids: Iterable[str]) -> str:
    out = []
    for i in ids:
        s = sources()[i]
        mark = {True: "verified", "partial": "unverified ⚠️", False: "not checked ❌"}[s.verified]
        out.append(f"{s.citation} ({mark})")
    return "; ".join(out)


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# The screening questions (with the record rules) and the site-condition rules are
# tabulated by scripts/screening_tables.py (its own test checks the guide holds them).
_SCREENING_TABLES: dict[str, Any] = runpy.run_path(
    str(Path(__file__).with_name("screening_tables.py"))
)


def screening_table() -> str:
    return str(_SCREENING_TABLES["screening_table"]())


def site_conditions_table() -> str:
    return str(_SCREENING_TABLES["conditions_table"]())


def site_rules_table() -> str:
    r = site_rules()
    rows = ["| id | rule | action | sources |", "|---|---|---|---|"]
    for rule_id, a in r.area_exclusions.items():
        text = f"{a.finding} of the (area): {a.text.format(where='limb or area')}"
        rows.append(f"| `{rule_id}` | {cell(text)} | {a.action} | {cited(a.sources)} |")
    for rule_id, p in r.never_needle.items():
        text = f"{p.name}: {p.text} (a site named {', '.join(p.terms)})"
        rows.append(f"| `{rule_id}` | {cell(text)} | refuse | {cited(p.sources)} |")
    for rule_id, s in r.session_rules.items():
        rows.append(f"| `{rule_id}` | {cell(s.text)} | {s.action} | {cited(s.sources)} |")
    for muscle_id, d in r.depth_caveats.items():
        name = muscles().get(muscle_id)
        text = f"{name.name if name else muscle_id} deeper than {d.max_depth_mm:g} mm: {d.text}"
        rows.append(f"| `depth_{muscle_id}` | {cell(text)} | {d.action} | {cited(d.sources)} |")
    for rule_id, c in r.cautions.items():
        rows.append(
            f"| `{rule_id}` | {cell(c.text)} | warn (muscle caution) | {cited(c.sources)} |"
        )
    return "\n".join(rows)


def overrides_table() -> str:
    policy = site_rules().override_reasons
    rows = [
        f"A written override needs one reason code and a written reason of at least "
        f"{policy.min_characters} characters and {policy.min_words} different words "
        f"({cited(policy.sources)}).",
        "",
        "| code | meaning |",
        "|---|---|",
    ]
    rows += [f"| `{code.value}` | {cell(text)} |" for code, text in policy.codes.items()]
    exempt = site_rules().bilateral_exempt
    names = ", ".join(m.name for i in exempt.muscles if (m := muscles().get(i)) is not None)
    rows += [
        "",
        f"Routine bilateral needling (not refused as both sides of the thorax): every thorax "
        f"site of the note is {names} with the approach {', '.join(exempt.approaches)} "
        f"({cited(exempt.sources)}).",
        "",
        "Electrical stimulation with an implanted device is refused (unless the screening "
        "records a clearance) at every thorax muscle and at muscles of these regions: "
        + ", ".join(r.replace("_", " ") for r in site_rules().estim_device_regions)
        + ".",
    ]
    return "\n".join(rows)


def muscle_table() -> str:
    cautions = site_rules().cautions
    rows = ["| muscle | region | thorax | cautions |", "|---|---|---|---|"]
    for m in muscles().muscles:
        names = ", ".join(f"`{c}`" for c in m.cautions) or "none (audited)"
        thorax = "yes" if m.thorax else ""
        rows.append(f"| {m.name} | {m.region.replace('_', ' ')} | {thorax} | {names} |")
    assert all(c in cautions for m in muscles().muscles for c in m.cautions)
    return "\n".join(rows)


def codes_table() -> str:
    data = billing_data().icd10cm
    rows = ["| condition | code | title | sources |", "|---|---|---|---|"]
    for cond in conditions().conditions:
        for c in data.by_condition.get(cond.id, []):
            rows.append(f"| {cond.label} | {c.code} | {cell(c.title)} | {cited(c.sources)} |")
    rows += [
        "",
        "Category headers refused when an episode is opened (choose a code beneath): "
        + "; ".join(f"{h} → {', '.join(v)}" for h, v in data.headers.items())
        + ".",
    ]
    return "\n".join(rows)


def counts() -> str:
    r = site_rules()
    groups = [r.area_exclusions, r.never_needle, r.session_rules, r.cautions, r.depth_caveats]
    rules = [rule.sources for g in groups for rule in g.values()]
    unverified = sum(caveat(s) is not None for s in rules)
    conditions = [rule.sources for rule in site_conditions().rule_ids().values()]
    c_unverified = sum(caveat(s) is not None for s in conditions)
    questions = questionnaire().questions
    q_unverified = sum(caveat(q.sources) is not None for q in questions)
    record = questionnaire().record_rules.values()
    r_unverified = sum(caveat(r.sources) is not None for r in record)
    return (
        f"- Site rules: {len(rules)}, of which {unverified} rest only on unverified sources "
        "(shown with the caveat).\n"
        f"- Site-condition rules (pregnancy, surgery, joint replacements, implants): "
        f"{len(conditions)}, of which {c_unverified} rest only on unverified sources.\n"
        f"- Screening questions: {len(questions)}, of which {q_unverified} rest only on "
        "unverified sources.\n"
        f"- Findings taken from the record (age): {len(record)}, of which {r_unverified} "
        "rest only on unverified sources."
    )


BLOCKS: dict[str, Callable[[], str]] = {
    "screening": screening_table,
    "site-conditions": site_conditions_table,
    "site-rules": site_rules_table,
    "overrides": overrides_table,
    "muscles": muscle_table,
    "codes": codes_table,
    "counts": counts,
}


def render(text: str) -> str:
    """The guide with every generated block replaced by what the data says now."""
    for name, make in BLOCKS.items():
        pattern = re.compile(
            rf"(<!-- generated: {name} -->\n)(?:.*?\n)?(<!-- /generated: {name} -->)", re.DOTALL
        )
        if pattern.search(text) is None:
            raise ValueError(f"docs/clinical-safety.md has no generated block '{name}'")
        match = pattern.search(text)
        assert match is not None
        replaced = match.group(1) + make() + "\n" + match.group(2)
        text = text[: match.start()] + replaced + text[match.end() :]
    return text


def main(argv: list[str]) -> int:
    current = DOC.read_text("utf-8")
    fresh = render(current)
    if "--check" in argv:
        return 0 if fresh == current else 1
    DOC.write_text(fresh, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
