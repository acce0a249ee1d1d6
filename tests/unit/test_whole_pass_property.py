"""Property-based: arbitrary Unicode in every property, through a whole pass, ends in decisions."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmbridge.bootstrap import load_config
from crmbridge.model import MappedLead, PushResult, SourceContact
from crmbridge.pipeline import SyncPipeline
from crmbridge.state.sqlite import SQLiteStateStore
from crmbridge.testing import FakeLeadSink, FakeLeadSource, reference_lead_schema

from .test_pipeline import QUALIFIED

CONFIG = load_config(Path(__file__).resolve().parents[2] / "mappings")
PROPERTIES = sorted(CONFIG.mapping.source_properties | CONFIG.rules.source_properties)
NOW_S = 1_800_000_000.0


# Any code point, lone surrogates and C0 controls included (text() leaves surrogates out).
alphabet = st.one_of(
    st.characters(),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    st.characters(max_codepoint=0x1F),
)
hostile = st.sampled_from(
    [
        "Head of \ud83d",
        "\ude00",
        "\x00",
        "CEO\x00",
        "\x1b[2J\x1b[H\x1b[31mPWNED\x1b[0m\x1b]0;owned\x07",
        "a" * 45,
        "x" * 100_000,
        "supply chain " * 2_000,
        "😀" * 300,
        "$75,000\ud83d",
        "json:null",
        "",
        " ",
    ]
)
value = st.one_of(st.none(), hostile, st.text(alphabet, max_size=300))
# Wholly arbitrary contacts (almost all rejected) and qualified ones with a few hostile values
# (many pushed), so both the reject path and the push path see the hostile text.
arbitrary = st.fixed_dictionaries(dict.fromkeys(PROPERTIES, value))
nearly_qualified = st.dictionaries(st.sampled_from(PROPERTIES), value, max_size=3).map(
    lambda hostile_values: {**QUALIFIED, **hostile_values}
)
contacts = st.lists(st.one_of(arbitrary, nearly_qualified), min_size=1, max_size=12)

_UNSENDABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def as_json_reads_it(text: str | None) -> str | None:
    """``text`` with surrogate pairs built side by side joined, as HubSpot's JSON would give it
    (and as the state store gives it back); lone surrogates stay."""
    if text is None:
        return None
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


class StrictBodySink(FakeLeadSink):
    """A fake sink that serialises each batch as the real request body would, strictly."""

    def upsert(self, leads: Sequence[MappedLead]) -> list[PushResult]:
        body = json.dumps([dict(lead.fields) for lead in leads], allow_nan=False)
        json.loads(body)
        for lead in leads:
            for field_value in lead.fields.values():
                if isinstance(field_value, str):
                    field_value.encode("utf-8")  # raises on a lone surrogate
                    assert _UNSENDABLE.search(field_value) is None
        return super().upsert(leads)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contacts)
def test_any_text_in_any_property_ends_with_one_decision_per_contact(
    properties: list[dict[str, str | None]],
) -> None:
    """A whole pass over arbitrary Unicode never raises; each contact gets one decision."""
    pulled = [
        SourceContact(str(1000 + n), props, 1_000_000 + n) for n, props in enumerate(properties)
    ]
    sink = StrictBodySink(reference_lead_schema())
    with tempfile.TemporaryDirectory() as directory:
        store = SQLiteStateStore(Path(directory) / "state.db")
        try:
            pipeline = SyncPipeline(
                source=FakeLeadSource(pulled, page_size=5),
                sink=sink,
                store=store,
                mapping=CONFIG.mapping,
                rules=CONFIG.rules,
                clock=lambda: NOW_S,
                sleep=lambda _: None,
            )
            summary = pipeline.run_pass()
            assert summary.stopped_early is None
            assert summary.pulled == len(pulled)
            assert summary.created + summary.rejected == len(pulled)
            assert "internal" not in summary.rejected_by_reason
            for contact in pulled:
                [decision] = store.decisions_of(contact.id)
                assert decision.inputs == {
                    name: as_json_reads_it(text) for name, text in contact.properties.items()
                }
                assert decision.email == as_json_reads_it(contact.get("email"))
            assert len(sink.leads) == summary.created
        finally:
            store.close()
