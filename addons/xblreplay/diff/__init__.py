"""Diff mode (``achievements_mode=diff``): every request for the host goes to the service, the
client gets the service's answer, and the answer replay would give from the cassettes is compared
with it; each disagreement is logged with the emulation rule it points at.

* :mod:`.rules`    rules/diff.yaml: the volatile fields left out, checked against its schema
* :mod:`.walk`     the JSON paths at which two bodies differ
* :mod:`.compare`  two answers compared, each difference attributed to a rule (R1–R10)
* :mod:`.exchange` one exchange: the cassettes' answer taken, the reply compared, the log field
"""

from .compare import Finding, Verdict, compare, identity
from .exchange import INTERNAL, Comparison, expect, judge, not_forwarded
from .rules import DiffRules, DiffRulesError, load_diff_rules
from .walk import differences, pointer

__all__ = [
    "INTERNAL", "Comparison", "DiffRules", "DiffRulesError", "Finding", "Verdict", "compare", "differences",
    "expect", "identity", "judge", "load_diff_rules", "not_forwarded", "pointer",
]
