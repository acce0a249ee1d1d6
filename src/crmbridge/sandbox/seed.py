"""Deterministic, realistic B2B contacts for the HubSpot simulator (docs/settings.md#seeded-data).

The same ``seed`` always gives the same contacts. About a third are *meant* to meet the reference
BANT rule set (budget above 50,000 as a parseable number, job title CEO/CFO/CIO, industry
MANUFACTURING or MACHINERY with a need mentioning "supply chain", timeline under 180 days); the
rest miss one or two criteria, so a demo shows both synced and rejected leads. ``intended_bant`` on
each :class:`ContactSeed` records that intent; the rule engine, not this module, has the last word.

Every contact has an Original Source (``hs_analytics_source``), as HubSpot sets it.

On purpose, as real portals hold them: non-ASCII names and e-mail local parts (``josé@…``,
``zoë@…``), malformed e-mails (``bad@``, ``no-at-sign.example.com``), missing last names and
companies (both ``None`` and ``""``), a company name longer than 255 characters, numbers typed as
text (``"$75,000"``, ``"75000.50"``, ``"50k"``, ``"TBD"``), archived contacts, and tie groups:
``tie_groups[i]`` contacts sharing one ``lastmodifieddate`` millisecond (the first as an import
that also created them, the others as bulk updates of older contacts).

Times: ``lastmodifieddate`` falls in the 30 days before ``start_ms`` (default: the portal clock)
and at least 3 minutes before it; ids ascend with ``createdate``.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from crmbridge.sandbox._hubspot_portal import ANALYTICS_SOURCES
from crmbridge.sandbox.hubspot import INDUSTRIES, HubSpotPortal

T = TypeVar("T")

DAY_MS = 86_400_000
MODIFIED_WINDOW_MS = 30 * DAY_MS
#: Newest modification allowed, before ``start_ms`` (index-lag margins are 60 s by default).
MIN_AGE_MS = 3 * 60_000
CREATED_SPREAD_MS = 2 * 365 * DAY_MS
BANT_SHARE = 0.33
DEFAULT_TIE_GROUPS = (250, 40)

FIRST_NAMES = (
    "Ana", "Ben", "Carla", "David", "Emma", "Felix", "Grace", "Hannah", "Ivan", "Julia", "Karl",
    "Laura", "Marco", "Nina", "Oliver", "Paula", "Rosa", "Sam", "Tara", "Umar", "Vera", "Walter",
    "Priya", "Chen", "Kenji", "Fatima", "Lars", "Ingrid", "Mateo", "Sofia", "Noah", "Mia", "Liam",
    "Aisha", "Diego", "Elena", "Tom", "Keisha", "Raj", "Olga",
)  # fmt: skip
NON_ASCII_FIRST_NAMES = (
    "José", "Zoë", "Søren", "Łukasz", "Björn", "Renée", "François", "Jürgen", "Åsa", "Çağla",
    "Siobhán", "Dmitrij", "Ngọc", "Małgorzata",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Müller", "García", "Rossi", "Novak", "Kowalski", "Nguyen", "Silva",
    "Schmidt", "Dubois", "Jensen", "Tanaka", "Okafor", "Patel", "Andersson", "Fischer", "Moreau",
    "Costa", "Lima", "Brown", "Wilson", "O'Brien", "van der Berg", "Ødegaard", "Núñez", "Şahin",
    "Weber", "Hughes", "Kim",
)  # fmt: skip
COMPANY_HEADS = (
    "Northwind", "Acme", "Globex", "Initech", "Vandelay", "Hooli", "Cyberdyne", "Tyrell",
    "Baltic", "Rhein", "Alpine", "Pacific", "Nordic", "Iberia", "Danube", "Summit", "Keystone",
    "Bluewater", "Ironbridge", "Lakeside",
)  # fmt: skip
COMPANY_CORES = (
    "Precision", "Machining", "Logistics", "Components", "Foods", "Robotics", "Plastics",
    "Steelworks", "Freight", "Electronics", "Analytics", "Supply", "Tooling", "Packaging",
)  # fmt: skip
COMPANY_SUFFIXES = ("GmbH", "Inc.", "Ltd", "AG", "S.A.", "LLC", "Oy", "B.V.", "Sp. z o.o.", "Co.")
TLDS = (".com", ".com", ".com", ".de", ".io", ".co.uk", ".fr", ".pl")
BANT_TITLES = ("CEO", "CFO", "CIO")
OTHER_TITLES = (
    "VP Operations", "Head of Supply Chain", "Supply Chain Manager", "Operations Manager",
    "Procurement Lead", "Analyst", "Data Analyst", "Engineer", "Software Engineer",
    "Plant Manager", "COO", "CTO", "Director of Logistics", "Buyer", "Marketing Manager",
    "Intern", "Office Manager",
)  # fmt: skip
BANT_INDUSTRIES = ("MANUFACTURING", "MACHINERY")
OTHER_INDUSTRIES = tuple(value for value in INDUSTRIES if value not in BANT_INDUSTRIES)
SUPPLY_CHAIN_NEEDS = (
    "Our supply chain has no visibility",
    "We lose track of parts across our supply chain",
    "Supply chain delays are costing us orders every quarter",
    "Need real-time tracking for our supply chain",
    "Supplier lead times are unpredictable and our supply chain planning lives in spreadsheets",
    "Looking to digitise supply chain planning across three plants",
    "Our supply chain team cannot see stock levels at the contract manufacturers",
)
OTHER_NEEDS = (
    "Want a better CRM for our sales team",
    "Looking for marketing automation",
    "Need help with payroll across two countries",
    "Evaluating BI dashboards for the board",
    "Just browsing",
    "Our website is slow",
    "Need ERP integration for finance",
    "",
    None,
)
PAIN_POINTS = (
    "Stockouts", "Late deliveries", "Manual data entry", "No single source of truth",
    "High freight costs", "Excess inventory", "Slow month-end close", "", None,
)  # fmt: skip
GOOD_BUDGETS = (
    "60000", "75000.50", "$75,000", "120000", "250000", "80000", "150000.00", "$1,200,000",
    "95000", "500000",
)  # fmt: skip
BAD_BUDGETS = ("TBD", "", None, "50k", "50000", "25000", "10000", "$30,000", "n/a", "40k", "0")
GOOD_TIMELINES = ("30", "45", "60", "90", "120", "150")
BAD_TIMELINES = ("180", "270", "365", "ASAP", "Q3", "next year", "", None, "TBD")
LIFECYCLE_WEIGHTS = {
    "lead": 40,
    "marketingqualifiedlead": 25,
    "salesqualifiedlead": 20,
    "subscriber": 7,
    "opportunity": 5,
    "customer": 3,
}
LEAD_STATUS_WEIGHTS: dict[str | None, int] = {
    "NEW": 30, "OPEN": 20, "IN_PROGRESS": 15, "ATTEMPTED_TO_CONTACT": 10, "CONNECTED": 8,
    "UNQUALIFIED": 5, "BAD_TIMING": 5, "OPEN_DEAL": 3, None: 4,
}  # fmt: skip
SOURCE_WEIGHTS = dict(
    zip([value for value, _ in ANALYTICS_SOURCES], (30, 15, 12, 8, 10, 5, 12, 6, 2), strict=True)
)
LONG_COMPANY = (
    "International Consolidated Precision Machinery, Industrial Automation, Supply Chain "
    "Logistics and Advanced Manufacturing Systems Holding Company of Lower Saxony, North "
    "Rhine-Westphalia and the Greater Rhine-Main Metropolitan Region, including all Subsidiaries, "
    "Affiliates and Successors in Interest (formerly Vereinigte Maschinenbau AG)"
)
#: Rows that must exist in every seeded portal large enough to hold them
#: (docs/settings.md#seeded-data).
SPECIAL_ROWS: tuple[dict[str, str | None], ...] = (
    {"firstname": "José", "lastname": "Álvarez", "email": "josé@maquinaria-alvarez.es"},
    {"firstname": "Zoë", "lastname": "Brontë", "email": "zoë@brontelogistics.co.uk"},
    {"firstname": "Søren", "lastname": "Kierkegård", "email": "søren.k@nordiskmaskin.dk"},
    {"email": "bad@"},
    {"email": "no-at-sign.example.com"},
    {"email": "two@@example.com"},
    {"lastname": None},
    {"lastname": ""},
    {"company": None},
    {"company": ""},
    {"company": LONG_COMPANY},
)


@dataclass(frozen=True)
class ContactSeed:
    """One generated contact, ready for :meth:`HubSpotPortal.add_contact`."""

    properties: dict[str, str | None]
    created_at_ms: int
    modified_at_ms: int
    archived: bool = False
    intended_bant: bool = False
    tie_group: int | None = field(default=None, compare=False)


def generate_contacts(
    count: int,
    *,
    seed: int = 7,
    tie_groups: Sequence[int] = DEFAULT_TIE_GROUPS,
    start_ms: int,
    archived: int | None = None,
) -> list[ContactSeed]:
    """``count`` contacts in creation order (the order that gives ascending ids).

    Tie groups together take at most half of ``count``, shrinking in order to fit. ``archived``
    defaults to about 1 % of the contacts (at least one from 10 contacts up); archived contacts
    are never tie members.
    Raises ``ValueError`` for a negative count.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    rng = random.Random(seed)
    newest, oldest = start_ms - MIN_AGE_MS, start_ms - MODIFIED_WINDOW_MS
    positions = list(range(count))
    rng.shuffle(positions)
    groups: dict[int, int] = {}  # position -> tie group index
    tie_ms: list[int] = []
    cursor = 0
    for group, size in enumerate(tie_groups):
        members = positions[cursor : min(cursor + max(0, size), count // 2)]
        cursor += len(members)
        groups.update(dict.fromkeys(members, group))
        while True:
            stamp = rng.randint(oldest, newest)
            if stamp not in tie_ms:
                tie_ms.append(stamp)
                break
    wanted_archived = archived if archived is not None else (count // 100 or int(count >= 10))
    archived_positions = set(positions[cursor : cursor + wanted_archived])
    specials = (
        dict(zip(positions[cursor + wanted_archived :], SPECIAL_ROWS, strict=False))
        if count >= 50
        else {}
    )

    seeds: list[ContactSeed] = []
    for position in range(count):
        intended = rng.random() < BANT_SHARE
        properties = _contact_properties(rng, intended)
        properties.update(specials.get(position, {}))
        # Its own generator per contact: the other values stay what they were before it existed.
        properties["hs_analytics_source"] = _weighted(
            random.Random(f"{seed}:source:{position}"), SOURCE_WEIGHTS
        )
        tie_group = groups.get(position)
        if tie_group is None:
            modified = rng.randint(oldest, newest)
            created = (
                modified if rng.random() < 0.2 else modified - rng.randint(0, CREATED_SPREAD_MS)
            )
        else:
            modified = tie_ms[tie_group]
            created = (
                modified if tie_group == 0 else modified - rng.randint(DAY_MS, CREATED_SPREAD_MS)
            )
        seeds.append(
            ContactSeed(
                properties, created, modified, position in archived_positions, intended, tie_group
            )
        )
    seeds.sort(key=lambda contact: contact.created_at_ms)  # stable: an import keeps its file order
    return seeds


def seed_portal(
    portal: HubSpotPortal,
    *,
    count: int,
    seed: int = 7,
    tie_groups: Sequence[int] = DEFAULT_TIE_GROUPS,
    start_ms: int | None = None,
    archived: int | None = None,
) -> list[str]:
    """Add ``count`` generated contacts to ``portal`` and return their ids (ascending).

    Deterministic for a given ``seed`` and ``start_ms`` (default: ``portal.clock_ms()``).
    """
    start = portal.clock_ms() if start_ms is None else start_ms
    contacts = generate_contacts(
        count, seed=seed, tie_groups=tie_groups, start_ms=start, archived=archived
    )
    return [
        portal.add_contact(
            contact.properties,
            created_at_ms=contact.created_at_ms,
            modified_at_ms=contact.modified_at_ms,
            archived=contact.archived,
        )
        for contact in contacts
    ]


def _contact_properties(rng: random.Random, intended: bool) -> dict[str, str | None]:
    broken: set[str] = set()
    if not intended:
        criteria = ["budget", "title", "industry", "need", "timeline"]
        broken.update(rng.sample(criteria, 1 if rng.random() < 0.7 else 2))
    industry = rng.choice(OTHER_INDUSTRIES if "industry" in broken else BANT_INDUSTRIES)
    needs_supply_chain = "need" not in broken and (
        "industry" not in broken or industry == "LOGISTICS_AND_SUPPLY_CHAIN" or rng.random() < 0.3
    )

    first = rng.choice(NON_ASCII_FIRST_NAMES if rng.random() < 0.08 else FIRST_NAMES)
    last: str | None = rng.choice(LAST_NAMES)
    company: str | None = _company(rng)
    roll = rng.random()
    if roll < 0.015:
        last = None
    elif roll < 0.03:
        company = rng.choice((None, ""))
    return {
        "firstname": first,
        "lastname": last,
        "email": _email(rng, first, last, company),
        "company": company,
        "jobtitle": rng.choice(OTHER_TITLES if "title" in broken else BANT_TITLES),
        "industry": industry,
        "phone": _phone(rng),
        "budget": rng.choice(BAD_BUDGETS if "budget" in broken else GOOD_BUDGETS),
        "timeline_days": rng.choice(BAD_TIMELINES if "timeline" in broken else GOOD_TIMELINES),
        "need": rng.choice(SUPPLY_CHAIN_NEEDS if needs_supply_chain else OTHER_NEEDS),
        "pain_point": rng.choice(PAIN_POINTS),
        "lifecyclestage": _weighted(rng, LIFECYCLE_WEIGHTS),
        "hs_lead_status": _weighted(rng, LEAD_STATUS_WEIGHTS),
    }


def _company(rng: random.Random) -> str:
    head, core = rng.choice(COMPANY_HEADS), rng.choice(COMPANY_CORES)
    return f"{head} {core} {rng.choice(COMPANY_SUFFIXES)}"


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(char for char in folded.lower() if char.isalnum())


def _email(rng: random.Random, first: str, last: str | None, company: str | None) -> str:
    roll = rng.random()
    if roll < 0.01:
        return rng.choice(("bad@", "no-at-sign.example.com", "name@", "@example.com"))
    domain = (_ascii(company.split()[0]) if company else "gmail") + rng.choice(TLDS)
    if not first.isascii() and roll < 0.5:
        return f"{first.lower()}@{domain}"  # non-ASCII local part, which Salesforce refuses
    local = _ascii(first) + ("." + _ascii(last) if last and roll < 0.8 else str(rng.randint(1, 99)))
    return f"{local}@{domain}"


def _phone(rng: random.Random) -> str | None:
    digits = rng.randint(1_000_000, 9_999_999)
    return rng.choice(
        (
            f"+1 555-{digits % 10_000:04d}",
            f"(555) {digits // 10_000:03d}-{digits % 10_000:04d}",
            f"+49 30 {digits}",
            f"0{digits}",
            None,
        )
    )


def _weighted(rng: random.Random, weights: dict[T, int]) -> T:
    return rng.choices(list(weights), weights=list(weights.values()))[0]
