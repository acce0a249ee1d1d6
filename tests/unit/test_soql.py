"""The current-values query: every literal escaped, IN lists cut under SOQL's length limits."""

from __future__ import annotations

from urllib.parse import quote_plus

from crmbridge.sinks.salesforce import (
    SOQL_URI_MAX_BYTES,
    SOQL_WHERE_MAX_CHARS,
    soql_in_lists,
    soql_literal,
)

HEAD = "SELECT Id, HubSpot_Contact_Id__c, Title FROM Lead WHERE HubSpot_Contact_Id__c IN ("


def test_quotes_and_backslashes_are_escaped() -> None:
    """O'Brien and a backslash become valid SOQL literals (\\' and \\\\)."""
    assert soql_literal("O'Brien") == "'O\\'Brien'"
    assert soql_literal("a\\b") == "'a\\\\b'"
    assert soql_literal("plain") == "'plain'"


def test_a_batch_of_200_contact_ids_is_one_query() -> None:
    """200 HubSpot ids (ten digits) fit in one IN list."""
    ids = [str(10**9 + n) for n in range(200)]
    [only] = list(soql_in_lists(ids, head=HEAD))
    assert only.split(",") == [f"'{i}'" for i in ids]


def test_long_values_are_cut_into_lists_under_the_limits() -> None:
    """200 ids of 64 characters do not fit one WHERE clause: each list stays under both limits
    and together they hold every id once, in order."""
    ids = [f"{n:064d}" for n in range(200)]
    lists = list(soql_in_lists(ids, head=HEAD))
    assert len(lists) > 1
    for literals in lists:
        query = f"{HEAD}{literals})"
        assert len(query) - query.index(" WHERE ") - len(" WHERE ") <= SOQL_WHERE_MAX_CHARS
        assert len(quote_plus(query)) <= SOQL_URI_MAX_BYTES
    assert [v for literals in lists for v in literals.split(",")] == [f"'{i}'" for i in ids]
