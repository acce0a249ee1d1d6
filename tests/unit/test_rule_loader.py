"""Unit tests for loading qualification rules: versions, content hashes and located errors."""

import re
from pathlib import Path
from typing import Any

import pytest

from crmbridge.errors import ConfigError, ConfigProblem
from crmbridge.model import SourceContact
from crmbridge.rules import RuleSet, load_rule_set

SHIPPED = Path(__file__).resolve().parents[2] / "mappings" / "qualification.yaml"

BLOCK = """\
# BANT, as agreed
name: BANT
match: all
criteria:
  - name: budget
    property: budget
    parse: money
    op: gt
    value: 50000
  - name: authority
    property: jobtitle
    op: in
    values: [CEO, CFO]
"""

REFORMATTED = """\
name: "BANT"
criteria:
- {name: budget, property: budget, parse: money, op: gt, value: 50_000.0}   # reformatted
- name: authority
  property: jobtitle
  op: in
  values:
    - CEO       # chief executive
    - CFO
"""


def load_text(tmp_path: Path, text: str) -> RuleSet:
    path = tmp_path / "qualification.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rule_set(path)


def problems_of(tmp_path: Path, text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    return caught.value.problems


def only_problem(tmp_path: Path, text: str) -> ConfigProblem:
    [problem] = problems_of(tmp_path, text)
    assert problem.hint, "every problem comes with a hint"
    return problem


def at_line(tmp_path: Path, line: int) -> str:
    return f"{tmp_path / 'qualification.yaml'}:{line}"


def criteria(*items: str) -> str:
    return "name: t\ncriteria:\n" + "".join(items)


# --- versions and hashes -----------------------------------------------------------------------


def test_explicit_version_is_used(tmp_path: Path) -> None:
    """A version: line in the file is the rule set's version."""
    assert load_text(tmp_path, "version: bant-2026.2\n" + BLOCK).version == "bant-2026.2"


def test_without_version_the_hash_is_the_version(tmp_path: Path) -> None:
    """Without version: the version is sha256: and 12 hex digits of the content hash."""
    rules = load_text(tmp_path, BLOCK)
    assert re.fullmatch(r"[0-9a-f]{64}", rules.content_hash)
    assert rules.version == "sha256:" + rules.content_hash[:12]


def test_hash_ignores_comments_layout_and_number_spelling(tmp_path: Path) -> None:
    """Comments, flow vs block style, quoting and 50000 vs 50_000.0 leave the hash unchanged."""
    first = load_text(tmp_path, BLOCK).content_hash
    assert load_text(tmp_path, REFORMATTED).content_hash == first


def test_hash_ignores_spelled_out_defaults(tmp_path: Path) -> None:
    """Writing a default (parse: text, case_sensitive: false) explicitly keeps the hash."""
    explicit = BLOCK.replace(
        "    op: in\n", "    op: in\n    parse: text\n    case_sensitive: false\n"
    )
    assert load_text(tmp_path, explicit).content_hash == load_text(tmp_path, BLOCK).content_hash


def test_hash_ignores_the_explicit_version(tmp_path: Path) -> None:
    """The version label is not rule content: adding one leaves the content hash alone."""
    labelled = load_text(tmp_path, "version: v2\n" + BLOCK)
    assert labelled.content_hash == load_text(tmp_path, BLOCK).content_hash


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("value: 50000", "value: 60000"),
        ("op: gt", "op: gte"),
        ("values: [CEO, CFO]", "values: [CEO, CFO, CIO]"),
        ("name: authority", "name: authority level"),
        ("match: all", "match: any"),
        ("    parse: money\n", "    parse: number\n"),
    ],
)
def test_hash_changes_when_a_rule_changes(tmp_path: Path, old: str, new: str) -> None:
    """Any change to the rules themselves changes the content hash and the derived version."""
    changed = BLOCK.replace(old, new)
    assert changed != BLOCK
    before, after = load_text(tmp_path, BLOCK), load_text(tmp_path, changed)
    assert after.content_hash != before.content_hash
    assert after.version != before.version


def test_from_dict_matches_the_file(tmp_path: Path) -> None:
    """The same rules from plain data have the same hash as from the file."""
    data: dict[str, Any] = {
        "name": "BANT",
        "criteria": [
            {"name": "budget", "property": "budget", "parse": "money", "op": "gt", "value": 50000},
            {"name": "authority", "property": "jobtitle", "op": "in", "values": ["CEO", "CFO"]},
        ],
    }
    assert RuleSet.from_dict(data).content_hash == load_text(tmp_path, BLOCK).content_hash


def test_from_dict_errors_name_the_key_path() -> None:
    """Plain data has no lines, so problems name the key path instead."""
    with pytest.raises(ConfigError) as caught:
        RuleSet.from_dict({"criteria": [{"name": "x", "property": "p", "op": "bigger"}]})
    assert str(caught.value.problems[0].location) == "<dict>:criteria[0].op"


def test_shipped_file_loads() -> None:
    """The shipped qualification.yaml loads with its explicit version."""
    rules = load_rule_set(SHIPPED)
    assert rules.version == "bant-2026.2"
    assert rules.name == "BANT"


# --- located errors ---------------------------------------------------------------------------


def test_unknown_operator_lists_the_valid_ones(tmp_path: Path) -> None:
    """An unknown operator is reported at its line with every valid operator."""
    text = criteria("  - name: budget\n", "    property: budget\n", "    op: bigger\n")
    problem = only_problem(tmp_path, text)
    assert str(problem).startswith(at_line(tmp_path, 5) + ": ")
    assert problem.message == 'criterion "budget": unknown operator "bigger"'
    assert problem.hint == (
        "valid operators: eq, ne, gt, gte, lt, lte, between, in, not_in, contains, "
        "contains_any, matches, present, absent"
    )


def test_symbol_operator_hints_at_its_name(tmp_path: Path) -> None:
    """Writing > for an operator hints at gt."""
    text = criteria("  - {name: budget, property: budget, parse: money, op: '>', value: 1}\n")
    problem = only_problem(tmp_path, text)
    assert problem.hint is not None
    assert problem.hint.startswith('write "gt" for >')


def test_misspelt_operator_suggests_the_close_one(tmp_path: Path) -> None:
    """A near-miss operator gets a did-you-mean hint."""
    text = criteria("  - {name: need, property: need, op: contain, value: x}\n")
    problem = only_problem(tmp_path, text)
    assert problem.hint is not None
    assert problem.hint.startswith('did you mean "contains"?')


def test_text_threshold_for_a_number_is_refused(tmp_path: Path) -> None:
    """A comparison value of the wrong type is reported at its line."""
    text = criteria(
        "  - name: budget\n    property: budget\n    parse: money\n    op: gt\n    value: lots\n"
    )
    problem = only_problem(tmp_path, text)
    assert str(problem.location) == at_line(tmp_path, 7)
    assert problem.message == 'criterion "budget": expected a number, got "lots"'


def test_number_written_as_text_is_accepted(tmp_path: Path) -> None:
    """A threshold like "50k" is read with the criterion's parser."""
    text = criteria("  - {name: b, property: b, parse: money, op: gt, value: 50k}\n")
    result = load_text(tmp_path, text).evaluate(SourceContact("1", {"b": "40000"}, 0))
    assert [r.message for r in result.reasons] == ["b: 40000 is not > 50000"]


def test_number_for_a_text_comparison_is_refused(tmp_path: Path) -> None:
    """A bare number where text is compared is refused with a hint to quote it."""
    problem = only_problem(
        tmp_path, criteria("  - {name: zip, property: zip, op: eq, value: 10}\n")
    )
    assert problem.message == 'criterion "zip": expected text, got a number'
    assert problem.hint is not None
    assert "quote it" in problem.hint


def test_numeric_operator_on_text_is_refused(tmp_path: Path) -> None:
    """gt on a property read as text asks for a parse line."""
    text = criteria("  - name: budget\n    property: budget\n    op: gt\n    value: 5\n")
    problem = only_problem(tmp_path, text)
    assert str(problem.location) == at_line(tmp_path, 5)
    assert problem.hint == 'add "parse: money", "parse: integer" or "parse: number"'


def test_text_operator_on_a_number_is_refused(tmp_path: Path) -> None:
    """contains on a parsed number is refused at the parse line."""
    text = criteria(
        "  - name: b\n    property: b\n    parse: money\n    op: contains\n    value: x\n"
    )
    assert str(only_problem(tmp_path, text).location) == at_line(tmp_path, 5)


def test_missing_name_is_refused(tmp_path: Path) -> None:
    """A criterion without a name is reported at its line."""
    problem = only_problem(tmp_path, criteria("  - property: budget\n    op: present\n"))
    assert str(problem.location) == at_line(tmp_path, 3)
    assert problem.message == 'this criterion has no "name"'


def test_duplicate_sibling_names_are_refused(tmp_path: Path) -> None:
    """Two siblings with one name are refused at the second."""
    text = criteria(
        "  - {name: a, property: x, op: present}\n", "  - {name: a, property: y, op: present}\n"
    )
    problem = only_problem(tmp_path, text)
    assert str(problem.location) == at_line(tmp_path, 4)
    assert problem.message == 'two criteria of the rule set are named "a"'


def test_same_name_in_different_groups_is_fine(tmp_path: Path) -> None:
    """Names only need to be unique among siblings."""
    text = criteria(
        "  - {name: g1, criteria: [{name: a, property: x, op: present}]}\n",
        "  - {name: g2, criteria: [{name: a, property: y, op: present}]}\n",
    )
    assert load_text(tmp_path, text).name == "t"


def test_at_least_larger_than_children_is_refused(tmp_path: Path) -> None:
    """at_least N with fewer than N children can never pass and is refused at its line."""
    text = criteria(
        "  - name: need\n",
        "    match: {at_least: 3}\n",
        "    criteria:\n",
        "      - {name: a, property: a, op: present}\n",
        "      - {name: b, property: b, op: present}\n",
    )
    problem = only_problem(tmp_path, text)
    assert str(problem.location) == at_line(tmp_path, 4)
    assert problem.message == "at_least 3 cannot be met by 2 criteria"
    assert problem.hint == "use a number from 1 to 2"


def test_bad_match_is_refused_with_the_forms(tmp_path: Path) -> None:
    """An unknown match is refused with the three valid forms."""
    text = "match: most\n" + criteria("  - {name: a, property: a, op: present}\n")
    problem = only_problem(tmp_path, text)
    assert problem.message == '"match" cannot be "most"'
    assert problem.hint == "write match: all, match: any, or match: {at_least: 2}"


def test_unknown_placeholder_in_reason_is_refused(tmp_path: Path) -> None:
    """A reason naming an unknown placeholder is refused, listing the valid ones."""
    text = criteria(
        "  - name: budget\n    property: budget\n    parse: money\n    op: gt\n    value: 1\n",
        '    reason: "{name}: {amount} too low"\n',
    )
    problem = only_problem(tmp_path, text)
    assert str(problem.location) == at_line(tmp_path, 8)
    assert problem.message == 'criterion "budget": unknown placeholder "{amount}" in the reason'
    assert problem.hint == ("placeholders here: {name}, {property}, {raw}, {threshold}, {value}")


def test_attribute_access_in_reason_is_refused(tmp_path: Path) -> None:
    """A placeholder with attribute access is refused, so templates cannot reach objects."""
    text = criteria('  - {name: a, property: a, op: present, reason: "{name.__class__}"}\n')
    assert "unknown placeholder" in only_problem(tmp_path, text).message


def test_stray_brace_in_reason_is_refused(tmp_path: Path) -> None:
    """An unbalanced brace in a reason is refused with a hint on literal braces."""
    text = criteria('  - {name: a, property: a, op: present, reason: "oops {"}\n')
    problem = only_problem(tmp_path, text)
    assert problem.hint is not None
    assert "{{" in problem.hint


def test_bad_regex_is_refused_at_load(tmp_path: Path) -> None:
    """A pattern that does not compile is refused at its line with the regex error."""
    text = criteria("  - name: t\n    property: jobtitle\n    op: matches\n    pattern: '(vp'\n")
    problem = only_problem(tmp_path, text)
    assert str(problem.location) == at_line(tmp_path, 6)
    assert problem.message.startswith('criterion "t": the pattern does not compile: missing )')


@pytest.mark.parametrize(
    ("pattern", "feature"),
    [(r"(vp)\1", "\\1"), ("^(?=chief)", "(?="), ("(?<!vice )president", "(?<"), (r"cfo\Z", "\\Z")],
)
def test_pattern_the_linear_matcher_cannot_run_is_refused(
    tmp_path: Path, pattern: str, feature: str
) -> None:
    """Backreferences and lookaround (fine for Python's re) are refused at their line."""
    text = criteria(
        f"  - name: t\n    property: jobtitle\n    op: matches\n    pattern: '{pattern}'\n"
    )
    problem = only_problem(tmp_path, text)
    assert str(problem.location) == at_line(tmp_path, 6)
    assert problem.message.startswith(
        'criterion "t": the pattern uses a feature the linear-time matcher (RE2) does not have'
    )
    assert feature in problem.message
    assert problem.hint is not None
    assert "backreferences" in problem.hint


def test_operand_of_another_operator_is_refused(tmp_path: Path) -> None:
    """values on a gt criterion is an unknown key for that operator."""
    text = criteria("  - name: b\n    property: b\n    parse: money\n    op: gt\n    values: [1]\n")
    problems = problems_of(tmp_path, text)
    assert (7, 'unknown key "values" in criterion "b"') in [
        (p.location.line, p.message) for p in problems
    ]


def test_missing_operand_is_refused(tmp_path: Path) -> None:
    """An operator without its operand is refused with an example."""
    problem = only_problem(tmp_path, criteria("  - {name: a, property: a, op: in}\n"))
    assert problem.message == 'criterion "a": "in" needs "values"'
    assert problem.hint == "e.g. values: [CEO, CFO]"


def test_min_above_max_is_refused(tmp_path: Path) -> None:
    """between with min above max is refused."""
    text = criteria("  - {name: a, property: a, parse: number, op: between, min: 5, max: 1}\n")
    assert only_problem(tmp_path, text).message == 'criterion "a": min 5 is above max 1'


def test_numeric_version_is_refused(tmp_path: Path) -> None:
    """A version written as a number is refused with a hint to quote it."""
    problem = only_problem(tmp_path, "version: 2026.10\n" + BLOCK)
    assert str(problem.location) == at_line(tmp_path, 1)
    assert problem.hint == 'quote it, e.g. version: "2026.1"'


def test_empty_file_is_refused(tmp_path: Path) -> None:
    """An empty rule file is refused with a hint."""
    assert only_problem(tmp_path, "# nothing yet\n").message == "the file is empty"


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    """Several problems in one file are listed in one ConfigError, in line order."""
    text = criteria(
        "  - {name: a, property: a, op: bigger}\n",
        "  - {property: b, op: present}\n",
        "  - {name: c, property: c, op: matches, pattern: '['}\n",
    )
    assert [p.location.line for p in problems_of(tmp_path, text)] == [3, 4, 5]


def test_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    """A YAML syntax error in the rule file is a ConfigError with its line."""
    problem = only_problem(tmp_path, "name: t\ncriteria:\n  - name: a\n   op: x\n")
    assert problem.location.line == 4


@pytest.mark.parametrize(
    ("template", "written"),
    [
        ("{value:>999999999}", "{value:>999999999}"),
        ("{value!r}", "{value!r}"),
        ("{name!s:^9}", "{name!s:^9}"),
    ],
)
def test_format_spec_or_conversion_in_a_reason_is_refused_as_such(
    tmp_path: Path, template: str, written: str
) -> None:
    """A padded or converted placeholder is refused for its format, not as an unknown name."""
    text = criteria(f'  - {{name: a, property: a, op: present, reason: "{template}"}}\n')
    problem = only_problem(tmp_path, text)
    assert problem.message == (
        f'criterion "a": "{written}" in the reason has a format (after ":" or "!"), '
        "which reasons do not take"
    )
    assert problem.hint is not None
    assert problem.hint.startswith("write the bare placeholder, e.g. {")


def test_empty_placeholder_in_a_reason_is_refused(tmp_path: Path) -> None:
    """{} names nothing: refused with the list of placeholders."""
    text = criteria('  - {name: a, property: a, op: present, reason: "bad {}"}\n')
    problem = only_problem(tmp_path, text)
    assert problem.message == 'criterion "a": "{}" in the reason names no placeholder'
