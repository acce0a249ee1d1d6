"""The qualification gate: the lead definition marketing and sales agreed on, as a rule file.

Public surface::

    rules = load_rule_set(Path("mappings/qualification.yaml"))   # ConfigError with file:line
    rules.evaluate(contact)      # Qualification: qualified?, per-criterion results and reasons
    rules.version                # recorded on every decision
    RuleSet.from_dict(data)      # the same rules from plain data (tests, what-if replays)

``mappings/qualification.yaml`` in the repository is the commented reference (BANT).
"""

from crmbridge.rules.engine import RuleSet, load_rule_set
from crmbridge.rules.model import (
    MAX_GROUP_DEPTH,
    MAX_RULE_TEXT_CHARS,
    Criterion,
    Group,
    Match,
    Op,
    ParseAs,
    RuleSetSpec,
)

__all__ = [
    "MAX_GROUP_DEPTH",
    "MAX_RULE_TEXT_CHARS",
    "Criterion",
    "Group",
    "Match",
    "Op",
    "ParseAs",
    "RuleSet",
    "RuleSetSpec",
    "load_rule_set",
]
