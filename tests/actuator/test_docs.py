"""The README's role table is the one the code enforces, and its example proposals are valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import TypeAdapter

from aiops.actuator.policy import Action, Role
from aiops.actuator.recommendation import Proposal
from aiops.actuator.roles import role_table

ROOT = Path(__file__).resolve().parents[2]


def test_readme_role_table_matches_the_code():
    text = (ROOT / "README.md").read_text()
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\| (\w[\w-]*) \| .* \| (yes|no) \| (yes|no) \| (yes|no) \| (yes|no) \|$", line)
        if m and m.group(1) in {a.value for a in Action}:
            rows[m.group(1)] = list(m.groups()[1:])
    expected = {r["action"]: [r[role.value] for role in Role] for r in role_table()}
    assert rows == expected


def test_example_recommendations_are_valid_proposals():
    doc = yaml.safe_load((ROOT / "deployments/examples/recommendations.yaml").read_text())
    proposals = TypeAdapter(list[Proposal]).validate_python(doc)
    assert {p.change.type for p in proposals} == {"replicas", "resources"}
