"""Property-based: whatever text HubSpot holds, judging a contact never raises."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmbridge.bootstrap import load_config
from crmbridge.model import SourceContact
from crmbridge.testing import reference_lead_schema

CONFIG = load_config(Path(__file__).resolve().parents[2] / "mappings")
SCHEMA = reference_lead_schema()
PROPERTIES = sorted(CONFIG.mapping.source_properties | CONFIG.rules.source_properties)

# Text people type, plus the shapes that break naive parsers.
tricky = st.sampled_from(
    ["", " ", "TBD", "50k", "$75,000", "1e309", "NaN", "-0", "١٢٣", "ASAP", "Q3", "∞", "\x00"]
)
values = st.one_of(st.none(), tricky, st.text(max_size=400))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries(dict.fromkeys(PROPERTIES, values)))
def test_any_property_values_give_a_lead_or_reasons(props: dict[str, str | None]) -> None:
    """Mapping and qualification return a lead or reasons for any input, and never raise."""
    contact = SourceContact("101", props, 1_700_000_000_000)
    qualification = CONFIG.rules.evaluate(contact)
    mapped = CONFIG.mapping.map(contact, SCHEMA)
    assert qualification.qualified == all(r.passed for r in qualification.results)
    if not qualification.qualified:
        assert qualification.reasons
        assert all(r.message for r in qualification.reasons)
    assert (mapped.lead is None) == bool(mapped.reasons)
    if mapped.lead is not None:
        assert mapped.lead.fields["HubSpot_Contact_Id__c"] == "101"
