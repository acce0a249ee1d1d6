"""Local HubSpot and Salesforce simulators, shipped so the demo and the tests run anywhere.

They follow ``docs/hubspot-api.md`` and ``docs/salesforce-api.md`` (HubSpot CRM v3 contacts,
Salesforce REST) over real HTTP on
loopback and are driven through the real client libraries. Nothing here is imported by the
sync path: only the CLI's ``demo``/``sandbox`` commands and the tests use it.
"""
