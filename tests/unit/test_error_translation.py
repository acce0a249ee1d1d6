"""Library exceptions become crmbridge errors by recovery class, classified by code."""

from __future__ import annotations

import json

import pytest
from hubspot.crm.contacts import ApiException
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from crmbridge.errors import (
    AuthenticationError,
    BudgetExhaustedError,
    FatalApiError,
    RateLimitedError,
    RequestRejectedError,
    RetryableApiError,
    SessionExpiredError,
)
from crmbridge.model import MappedLead, RecordError
from crmbridge.sinks.salesforce import (
    _push_result,
    is_transient_row_error,
    translate_salesforce_error,
)
from crmbridge.sources.hubspot import translate_api_exception


def hubspot_error(
    status: int, body: dict[str, object], headers: dict[str, str] | None = None
) -> ApiException:
    exc = ApiException(status=status, reason="x")
    exc.body = json.dumps(body)
    exc.headers = headers or {}
    return exc


def test_hubspot_ten_secondly_429_waits_for_the_window() -> None:
    """A burst 429 without Retry-After waits for the 10-second window to drain."""
    err = translate_api_exception(
        hubspot_error(
            429,
            {
                "errorType": "RATE_LIMIT",
                "policyName": "TEN_SECONDLY_ROLLING",
                "message": "You have reached your ten_secondly_rolling limit.",
            },
        )
    )
    assert isinstance(err, RateLimitedError)
    assert err.retry_after_s == 10.0


def test_hubspot_retry_after_header_wins() -> None:
    """A Retry-After header on a 429 is honoured as sent."""
    err = translate_api_exception(
        hubspot_error(429, {"policyName": "SECONDLY"}, {"Retry-After": "3"})
    )
    assert isinstance(err, RateLimitedError)
    assert err.retry_after_s == 3.0


def test_hubspot_daily_429_stops_the_pass() -> None:
    """The daily limit cannot be waited out within a pass: it is a budget error."""
    err = translate_api_exception(
        hubspot_error(
            429,
            {
                "errorType": "RATE_LIMIT",
                "policyName": "DAILY",
                "message": "You have reached your daily limit.",
            },
        )
    )
    assert isinstance(err, BudgetExhaustedError)


def test_hubspot_401_is_authentication() -> None:
    """A refused token stops loudly."""
    err = translate_api_exception(hubspot_error(401, {"category": "INVALID_AUTHENTICATION"}))
    assert isinstance(err, AuthenticationError)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 423])
def test_hubspot_transient_statuses_are_retryable(status: int) -> None:
    """Server errors and 423 Locked are retried."""
    assert isinstance(translate_api_exception(hubspot_error(status, {})), RetryableApiError)


def test_hubspot_400_is_permanent_with_correlation_id() -> None:
    """A 400 is not retried and keeps HubSpot's correlation id for support."""
    err = translate_api_exception(
        hubspot_error(
            400,
            {"category": "VALIDATION_ERROR", "message": "bad filter", "correlationId": "abc-123"},
        )
    )
    assert isinstance(err, RequestRejectedError)
    assert "abc-123" in str(err)


def sf_content(code: str, message: str) -> list[dict[str, str]]:
    return [{"errorCode": code, "message": message}]


def test_salesforce_total_requests_limit_is_budget() -> None:
    """REQUEST_LIMIT_EXCEEDED for TotalRequests (a 403) stops pushing: the daily budget is spent."""
    exc = SalesforceRefusedRequest(
        "u", 403, "Lead", sf_content("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    )
    assert isinstance(translate_salesforce_error(exc), BudgetExhaustedError)


def test_salesforce_concurrent_limit_backs_off() -> None:
    """The concurrent-request variant of REQUEST_LIMIT_EXCEEDED is retried with backoff."""
    exc = SalesforceRefusedRequest(
        "u",
        403,
        "Lead",
        sf_content("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
    )
    assert isinstance(translate_salesforce_error(exc), RateLimitedError)


def test_salesforce_expired_session_asks_for_renewal() -> None:
    """INVALID_SESSION_ID is a session error, renewed once by the sink."""
    exc = SalesforceExpiredSession(
        "u", 401, "Lead", sf_content("INVALID_SESSION_ID", "Session expired or invalid")
    )
    assert isinstance(translate_salesforce_error(exc), SessionExpiredError)


def test_salesforce_html_503_is_retryable() -> None:
    """A 503 with an HTML body is transient."""
    exc = SalesforceGeneralError("u", 503, "Lead", "<html>Service unavailable</html>")
    assert isinstance(translate_salesforce_error(exc), RetryableApiError)


def test_salesforce_lock_as_request_error_is_retryable() -> None:
    """UNABLE_TO_LOCK_ROW as a 400 request error is classified by code, not status."""
    exc = SalesforceMalformedRequest(
        "u", 400, "Lead", sf_content("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access")
    )
    assert isinstance(translate_salesforce_error(exc), RetryableApiError)


def test_salesforce_json_parser_error_is_permanent() -> None:
    """JSON_PARSER_ERROR refuses the request for good (the pipeline isolates the row)."""
    exc = SalesforceMalformedRequest(
        "u", 400, "Lead", sf_content("JSON_PARSER_ERROR", "Cannot deserialize")
    )
    err = translate_salesforce_error(exc)
    assert isinstance(err, RequestRejectedError)
    assert err.code == "JSON_PARSER_ERROR"


def test_salesforce_api_disabled_is_fatal() -> None:
    """API_DISABLED_FOR_ORG stops the run."""
    exc = SalesforceRefusedRequest(
        "u", 403, "Lead", sf_content("API_DISABLED_FOR_ORG", "API is not enabled")
    )
    assert isinstance(translate_salesforce_error(exc), FatalApiError)


def test_row_lock_is_transient_but_validation_is_not() -> None:
    """Per-row UNABLE_TO_LOCK_ROW is resent; a validation error is a reject."""
    lead = MappedLead("101", {"LastName": "Ng"})
    locked = _push_result(
        lead,
        {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked"}]},
    )
    invalid = _push_result(
        lead,
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "INVALID_EMAIL_ADDRESS",
                    "message": "Email: invalid",
                    "fields": ["Email"],
                }
            ],
        },
    )
    assert locked.transient
    assert not invalid.transient
    assert invalid.errors[0].fields == ("Email",)


def test_trigger_error_wrapping_a_lock_is_transient() -> None:
    """CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY is transient only when it reports a lock."""
    assert is_transient_row_error(
        RecordError("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "x: UNABLE_TO_LOCK_ROW")
    )
    assert not is_transient_row_error(
        RecordError("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "flow failed")
    )
