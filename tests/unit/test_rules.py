"""Unit tests for rule evaluation: operators, combinators, reasons and the shipped BANT file."""

from pathlib import Path
from typing import Any

import pytest

from crmbridge.model import CriterionResult, Reason, SourceContact
from crmbridge.rules import MAX_RULE_TEXT_CHARS, RuleSet, load_rule_set

SHIPPED = Path(__file__).resolve().parents[2] / "mappings" / "qualification.yaml"

QUALIFIED = {
    "budget": "$75,000",
    "jobtitle": "CFO",
    "industry": "MACHINERY",
    "need": "Our supply chain has no visibility",
    "timeline_days": "90",
}


def contact(**props: str | None) -> SourceContact:
    return SourceContact("7", props, modified_at_ms=0)


def judge(criterion: dict[str, Any], value: str | None) -> CriterionResult:
    """The result of one criterion reading property ``p`` = ``value``."""
    rules = RuleSet.from_dict({"name": "t", "criteria": [{"property": "p", **criterion}]})
    return rules.evaluate(contact(p=value)).results[0]


def reason(criterion: dict[str, Any], value: str | None) -> str | None:
    result = judge(criterion, value)
    assert not result.passed
    return result.reason


def passes(criterion: dict[str, Any], value: str | None) -> bool:
    return judge(criterion, value).passed


@pytest.fixture(scope="module")
def bant() -> RuleSet:
    return load_rule_set(SHIPPED)


# --- operators ---------------------------------------------------------------------------------

GT = {"name": "budget", "parse": "money", "op": "gt", "value": 50000}


def test_gt_passes_above_the_threshold() -> None:
    """gt passes a value above the threshold."""
    assert passes(GT, "50001")


def test_gt_fails_at_the_threshold_with_reason() -> None:
    """gt fails at or below the threshold, naming value and threshold."""
    assert reason(GT, "50000") == "budget: 50000 is not > 50000"


def test_gte_passes_at_the_threshold() -> None:
    """gte passes the threshold itself."""
    assert passes({**GT, "op": "gte"}, "50000")


def test_gte_fails_below_with_reason_keeping_cents() -> None:
    """gte fails below the threshold; the value keeps its written cents."""
    assert reason({**GT, "op": "gte"}, "49999.50") == "budget: 49999.50 is not >= 50000"


LT = {"name": "timeline", "parse": "integer", "op": "lt", "value": 180}


def test_lt_passes_below_the_threshold() -> None:
    """lt passes a value below the threshold."""
    assert passes(LT, "179")


def test_lt_fails_at_the_threshold_with_reason() -> None:
    """lt fails at the threshold."""
    assert reason(LT, "180") == "timeline: 180 is not < 180"


def test_lte_passes_at_and_fails_above() -> None:
    """lte passes the threshold itself and fails above it."""
    assert passes({**LT, "op": "lte"}, "180")
    assert reason({**LT, "op": "lte"}, "181") == "timeline: 181 is not <= 180"


BETWEEN = {"name": "size", "parse": "number", "op": "between", "min": 10, "max": 20}


@pytest.mark.parametrize("value", ["10", "15", "20"])
def test_between_is_inclusive(value: str) -> None:
    """between passes both bounds and everything in between."""
    assert passes(BETWEEN, value)


def test_between_fails_outside_with_reason() -> None:
    """between fails outside the range, naming both bounds."""
    assert reason(BETWEEN, "21") == "size: 21 is not between 10 and 20"


EQ = {"name": "stage", "op": "eq", "value": "Customer"}


def test_eq_text_ignores_case_and_spaces() -> None:
    """eq on text ignores case and surrounding spaces by default."""
    assert passes(EQ, "  customer ")


def test_eq_text_fails_with_quoted_reason() -> None:
    """eq on text fails with both texts quoted."""
    assert reason(EQ, "Lead") == 'stage: "Lead" is not "Customer"'


def test_eq_numeric_compares_numbers() -> None:
    """eq on a parsed number compares values, not spellings."""
    criterion = {"name": "seats", "parse": "number", "op": "eq", "value": 5}
    assert passes(criterion, "5.0")
    assert reason(criterion, "6") == "seats: 6 is not 5"


def test_case_sensitive_opts_out_of_folding() -> None:
    """case_sensitive: true compares text exactly."""
    assert reason({**EQ, "case_sensitive": True}, "customer") == (
        'stage: "customer" is not "Customer"'
    )


NE = {"name": "competitor", "op": "ne", "value": "Rival Inc"}


def test_ne_passes_other_values() -> None:
    """ne passes any other value."""
    assert passes(NE, "Acme")


def test_ne_fails_on_the_value() -> None:
    """ne fails on the value (ignoring case)."""
    assert reason(NE, "rival inc") == 'competitor: "rival inc" must not be "Rival Inc"'


IN = {"name": "authority", "op": "in", "values": ["CEO", "CFO", "CIO"]}


def test_in_passes_a_listed_value() -> None:
    """in passes a listed value whatever its case."""
    assert passes(IN, "cfo")


def test_in_fails_listing_the_values() -> None:
    """in fails with the values joined by commas."""
    assert reason(IN, "Analyst") == 'authority: "Analyst" is not one of CEO, CFO, CIO'


def test_in_numeric_compares_numbers() -> None:
    """in on numbers matches equal values written differently."""
    criterion = {"name": "term", "parse": "integer", "op": "in", "values": [30, 60, 90]}
    assert passes(criterion, "60.0")
    assert reason(criterion, "45") == "term: 45 is not one of 30, 60, 90"


NOT_IN = {"name": "industry", "op": "not_in", "values": ["GOVERNMENT", "EDUCATION"]}


def test_not_in_passes_other_values() -> None:
    """not_in passes a value outside the list."""
    assert passes(NOT_IN, "RETAIL")


def test_not_in_fails_on_a_listed_value() -> None:
    """not_in fails on a listed value."""
    assert reason(NOT_IN, "government") == (
        'industry: "government" is one of the excluded values GOVERNMENT, EDUCATION'
    )


CONTAINS = {"name": "need", "op": "contains", "value": "supply chain"}


def test_contains_ignores_case_and_line_breaks() -> None:
    """contains finds the text whatever its case and however the words are spaced."""
    assert passes(CONTAINS, "Our Supply\n  Chain is slow")


def test_contains_fails_with_reason() -> None:
    """contains fails naming the text it looked for."""
    assert reason(CONTAINS, "all fine") == 'need: "all fine" does not contain "supply chain"'


ANY = {"name": "need", "op": "contains_any", "values": ["supply chain", "logistics"]}


def test_contains_any_passes_on_one_match() -> None:
    """contains_any passes when one of the texts appears."""
    assert passes(ANY, "Our LOGISTICS costs")


def test_contains_any_fails_with_reason() -> None:
    """contains_any fails naming every text it looked for."""
    assert reason(ANY, "all fine") == 'need: "all fine" mentions none of supply chain, logistics'


MATCHES = {"name": "title", "op": "matches", "pattern": r"^(vp|chief)\b"}


def test_matches_searches_ignoring_case() -> None:
    """matches searches the regex, ignoring case by default."""
    assert passes(MATCHES, "Chief Executive Officer")


def test_matches_fails_with_reason() -> None:
    """matches fails naming the pattern."""
    assert reason(MATCHES, "Analyst") == 'title: "Analyst" does not match ^(vp|chief)\\b'


def test_matches_case_sensitive() -> None:
    """matches with case_sensitive: true respects case."""
    assert not passes({**MATCHES, "case_sensitive": True}, "Chief Executive")


def test_matches_is_linear_on_a_catastrophic_pattern() -> None:
    """(a+)+b on 45 a's (minutes with Python's re) and ^(\\w+\\s?)+$ on long text answer."""
    assert not passes({"name": "t", "op": "matches", "pattern": "(a+)+b"}, "a" * 45)
    words = {"name": "t", "op": "matches", "pattern": r"^(\w+\s?)+$"}
    assert passes(words, "ab " * 3000)
    assert not passes(words, "ab " * 3000 + "!")


def test_matches_reads_text_with_a_lone_surrogate() -> None:
    """RE2 reads UTF-8: a lone surrogate is matched as U+FFFD instead of raising."""
    assert passes({"name": "t", "op": "matches", "pattern": "^head of \ufffd$"}, "Head of \ud83d")


def test_text_longer_than_a_rule_reads_fails_with_its_own_reason() -> None:
    """A value over MAX_RULE_TEXT_CHARS is not judged on a prefix: it fails, saying why."""
    criterion = {"name": "need", "op": "contains", "value": "supply chain"}
    assert passes(criterion, "supply chain " + "x" * (MAX_RULE_TEXT_CHARS - 13))
    assert reason(criterion, "supply chain " + "x" * MAX_RULE_TEXT_CHARS) == (
        f"need: the text is {MAX_RULE_TEXT_CHARS + 13:,} characters long, "
        f"more than the {MAX_RULE_TEXT_CHARS:,} a rule reads"
    )
    assert passes({"name": "need", "op": "present"}, "x" * (MAX_RULE_TEXT_CHARS + 1))


def test_present_passes_any_value() -> None:
    """present passes any non-blank value."""
    assert passes({"name": "phone", "op": "present"}, "x")


def test_present_fails_on_blank() -> None:
    """present fails on a blank value with the no-value reason."""
    assert reason({"name": "phone", "op": "present"}, "  ") == (
        'phone: no value (HubSpot property "p" is empty)'
    )


def test_absent_passes_on_empty() -> None:
    """absent passes when the property is unset."""
    assert passes({"name": "opt out", "op": "absent"}, None)


def test_absent_fails_on_a_value() -> None:
    """absent fails when the property has a value."""
    assert reason({"name": "opt out", "op": "absent"}, "yes") == (
        'opt out: must be empty, but is "yes"'
    )


# --- missing and unreadable values ------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_value_fails_with_no_value_reason(value: str | None) -> None:
    """An unset or blank property fails with a reason naming the HubSpot property."""
    assert reason(GT, value) == 'budget: no value (HubSpot property "p" is empty)'


def test_missing_value_fails_even_for_exclusions() -> None:
    """not_in and ne fail on an empty value too: qualification needs the data."""
    assert not passes(NOT_IN, None)
    assert not passes(NE, None)


def test_unreadable_money_fails_with_the_raw_value() -> None:
    """A budget that is not a number fails quoting what was typed."""
    assert reason(GT, "TBD") == 'budget: "TBD" is not a number'


def test_unreadable_integer_fails_with_the_raw_value() -> None:
    """A timeline that is not a whole number fails quoting what was typed."""
    assert reason(LT, "ASAP") == 'timeline: "ASAP" is not a whole number'


def test_custom_reason_can_show_the_raw_value() -> None:
    """A reason template can show the parsed {value} and the typed {raw}."""
    criterion = {**GT, "reason": "budget {raw} ({value}) is below {threshold}"}
    assert reason(criterion, "$30,000") == "budget $30,000 (30000) is below 50000"


def test_custom_reason_does_not_word_missing_values() -> None:
    """An empty property keeps the no-value reason even with a custom template."""
    criterion = {**GT, "reason": "too poor: {value}"}
    assert reason(criterion, None) == 'budget: no value (HubSpot property "p" is empty)'


def test_long_values_are_elided_in_reasons() -> None:
    """A long text is cut in the reason so reject lines stay readable."""
    text = reason(CONTAINS, "x" * 500)
    assert text is not None
    assert len(text) < 150


@pytest.mark.parametrize(
    "value", ["\x00", "💥" * 1000, "1e999", "NaN", "-0", "{value}", "{0}", "%s", "9" * 5000]
)
def test_evaluate_never_raises(bant: RuleSet, value: str) -> None:
    """Any value in any property gives a decision, never an exception."""
    qualification = bant.evaluate(contact(**dict.fromkeys(QUALIFIED, value)))
    assert qualification.qualified is False


# --- combinators ------------------------------------------------------------------------------

A_OK = {"name": "a", "property": "a", "op": "present"}
B_OK = {"name": "b", "property": "b", "op": "present"}
C_BAD = {"name": "c", "property": "c", "op": "eq", "value": "yes"}
D_BAD = {"name": "d", "property": "d", "op": "eq", "value": "yes"}
PROPS = {"a": "1", "b": "1", "c": "no", "d": "no"}


def group(match: Any, *children: dict[str, Any], **extra: Any) -> CriterionResult:
    rules = RuleSet.from_dict(
        {"criteria": [{"name": "g", "match": match, "criteria": list(children), **extra}]}
    )
    return rules.evaluate(contact(**PROPS)).results[0]


def test_all_passes_when_every_child_passes() -> None:
    """match: all passes when every child passes."""
    assert group("all", A_OK, B_OK).passed


def test_all_fails_listing_every_failed_child() -> None:
    """A failed all-group's reason lists each failed child's reason."""
    result = group("all", A_OK, C_BAD, D_BAD)
    assert not result.passed
    assert result.reason == 'g: c: "no" is not "yes"; d: "no" is not "yes"'


def test_any_passes_on_one_child() -> None:
    """match: any passes when one child passes."""
    assert group("any", C_BAD, A_OK).passed


def test_any_fails_when_none_pass() -> None:
    """A failed any-group says none met and lists them."""
    assert group("any", C_BAD, D_BAD).reason == (
        'g: none met: c: "no" is not "yes"; d: "no" is not "yes"'
    )


def test_at_least_passes_with_enough_children() -> None:
    """at_least 2 passes when two children pass."""
    assert group({"at_least": 2}, A_OK, B_OK, C_BAD).passed


def test_at_least_fails_with_counts() -> None:
    """A failed at_least group says how many passed and how many were needed."""
    assert group({"at_least": 2}, A_OK, C_BAD, D_BAD).reason == (
        'g: 1 of 3 met, 2 needed: c: "no" is not "yes"; d: "no" is not "yes"'
    )


def test_group_reason_template() -> None:
    """A group's own reason template replaces the default wording."""
    result = group("all", A_OK, C_BAD, D_BAD, reason="{name}: {failed_count} of {total} missed")
    assert result.reason == "g: 2 of 3 missed"


def test_groups_nest_to_any_depth() -> None:
    """Groups inside groups combine their children's results recursively."""
    inner = {"name": "inner", "match": "any", "criteria": [C_BAD, A_OK]}
    middle = {"name": "middle", "match": "all", "criteria": [inner, B_OK]}
    result = group({"at_least": 1}, middle, D_BAD)
    assert result.passed
    assert [c.name for c in result.children] == ["middle", "d"]
    assert [c.name for c in result.children[0].children[0].children] == ["c", "a"]


def test_every_child_is_evaluated() -> None:
    """A group evaluates all its children (no short-circuit), so every miss is reported."""
    result = group("any", A_OK, C_BAD, D_BAD)
    assert [(c.name, c.passed) for c in result.children] == [
        ("a", True),
        ("c", False),
        ("d", False),
    ]


def test_top_level_any_qualifies_on_one_criterion() -> None:
    """Top-level match: any qualifies when one criterion passes, still listing the failures."""
    rules = RuleSet.from_dict({"match": "any", "criteria": [A_OK, C_BAD]})
    qualification = rules.evaluate(contact(**PROPS))
    assert qualification.qualified
    assert [r.criterion for r in qualification.reasons] == ["c"]


def test_top_level_at_least() -> None:
    """Top-level match: at_least N counts passing top-level criteria."""
    rules = RuleSet.from_dict({"match": {"at_least": 2}, "criteria": [A_OK, C_BAD, D_BAD]})
    assert not rules.evaluate(contact(**PROPS)).qualified


# --- the shipped BANT file --------------------------------------------------------------------


def test_shipped_budget_reason_is_exact(bant: RuleSet) -> None:
    """The shipped file words a low budget exactly as the issue asks."""
    result = bant.evaluate(contact(**{**QUALIFIED, "budget": "30000"}))
    assert result.reasons == (Reason("budget", "budget: 30000 is not > 50000", "RULE"),)


def test_shipped_authority_reason_is_exact(bant: RuleSet) -> None:
    """The shipped file words a wrong job title exactly as the issue asks."""
    result = bant.evaluate(contact(**{**QUALIFIED, "jobtitle": "Analyst"}))
    assert [r.message for r in result.reasons] == [
        'authority: job title "Analyst" is not one of CEO, CFO, CIO'
    ]


def test_shipped_need_group_lists_both_failures(bant: RuleSet) -> None:
    """The need group's reason lists the industry and the missing supply-chain problem."""
    result = bant.evaluate(contact(**{**QUALIFIED, "industry": "RETAIL", "need": "CRM hygiene"}))
    assert [r.message for r in result.reasons] == [
        'need: industry "RETAIL" is not one of MANUFACTURING, MACHINERY; '
        "need text does not mention supply chain, supply-chain, logistics"
    ]


def test_shipped_rules_qualify_a_bant_lead(bant: RuleSet) -> None:
    """A contact meeting budget, authority, need and timeline qualifies."""
    result = bant.evaluate(contact(**QUALIFIED))
    assert result.qualified
    assert result.reasons == ()


def test_shipped_rules_give_one_reason_per_failed_criterion(bant: RuleSet) -> None:
    """A contact failing everything gets one reason per top-level criterion, in file order."""
    result = bant.evaluate(contact(budget="TBD", jobtitle="Analyst", timeline_days="ASAP"))
    assert [r.message for r in result.reasons] == [
        'budget: "TBD" is not a number',
        'authority: job title "Analyst" is not one of CEO, CFO, CIO',
        'need: industry: no value (HubSpot property "industry" is empty); '
        'supply-chain problem: no value (HubSpot property "need" is empty)',
        'timeline: "ASAP" is not a whole number',
    ]


def test_shipped_version_is_recorded_on_decisions(bant: RuleSet) -> None:
    """Every qualification carries the rule set's version."""
    assert bant.version == "bant-2026.2"
    assert bant.evaluate(contact()).rule_set_version == "bant-2026.2"


def test_shipped_rules_read_the_bant_properties(bant: RuleSet) -> None:
    """The rule set lists the HubSpot properties it reads."""
    assert bant.name == "BANT"
    assert bant.source_properties == frozenset(QUALIFIED)
