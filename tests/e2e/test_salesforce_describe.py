"""A describe that answers NOT_FOUND is a configuration error naming what to fix, not an outage."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from crmbridge.errors import ConfigError, ConfigProblem, Location, RequestRejectedError
from crmbridge.retry import RetryPolicy
from crmbridge.settings import RetrySettings, SalesforceSettings
from crmbridge.sinks.salesforce import SalesforceSink

from .conftest import World

OBJECT_LINE = Location("mappings/fields.yaml", 25)
VERSIONS = "GET /services/data"


def sink(world: World, *, object_name: str = "Lead", version: str = "59.0") -> SalesforceSink:
    settings = SalesforceSettings(
        instance_url=world.salesforce.url,
        access_token=SecretStr(world.salesforce.access_token),
        ca_bundle=Path(world.salesforce.ca_path),
        api_version=version,
    )
    return SalesforceSink(
        settings,
        RetryPolicy("salesforce", RetrySettings(max_attempts=2), sleep=world.slept.append),
        external_id_field="HubSpot_Contact_Id__c",
        object_name=object_name,
        object_location=OBJECT_LINE,
    )


def describe_problem(s: SalesforceSink) -> ConfigProblem:
    """The one problem of the ConfigError that ``s.describe()`` raises (``s`` is closed)."""
    try:
        with pytest.raises(ConfigError) as caught:
            s.describe()
    finally:
        s.close()
    (problem,) = caught.value.problems
    return problem


def test_unknown_object_points_at_the_object_line(world: World) -> None:
    """NOT_FOUND for `Leed` names the object at its fields.yaml line, after one versions call."""
    s = sink(world, object_name="Leed")
    problem = describe_problem(s)
    assert problem.location == OBJECT_LINE
    assert '"Leed"' in problem.message
    assert problem.hint is not None
    assert "Lead" in problem.hint
    assert s.calls == 2
    assert world.salesforce.calls.count(VERSIONS) == 1


def test_unserved_version_names_the_variable_and_the_served_range(world: World) -> None:
    """NOT_FOUND at version 99.0 names API_VERSION and the versions the org serves."""
    s = sink(world, version="99.0")
    problem = describe_problem(s)
    assert problem.location == Location("environment variable CRMBRIDGE_SALESFORCE__API_VERSION")
    assert "99.0" in problem.message
    assert "31.0 to 64.0" in problem.message
    assert problem.hint is not None
    assert "59.0" in problem.hint


def test_unreadable_versions_still_give_a_config_error(world: World) -> None:
    """When the versions list cannot be read, the error names the object and the version."""
    world.salesforce.inject_status(500, method="GET", path_pattern="^/services/data/?$", times=5)
    s = sink(world, object_name="Leed")
    problem = describe_problem(s)
    assert problem.location == OBJECT_LINE
    assert "59.0" in problem.message


def test_other_describe_failures_stay_api_errors(world: World) -> None:
    """A describe refused for another reason is not reported as a configuration error."""
    world.salesforce.inject_status(400, path_pattern="/describe", error_code="MALFORMED_QUERY")
    s = sink(world)
    try:
        with pytest.raises(RequestRejectedError, match="MALFORMED_QUERY"):
            s.describe()
    finally:
        s.close()
    assert world.salesforce.calls.count(VERSIONS) == 0
