"""The field map and stage map: HubSpot contact properties → the Salesforce Lead's vocabulary.

Public surface::

    mapping = load_mapping(Path("mappings"))   # fields.yaml + stages.yaml; ConfigError on problems
    preflight(mapping, schema)                  # against the describe: list of problems
    mapping.map(contact, schema)                # MapResult: a lead, or every reason it is not one
    mapping.stage_of(contact)                   # the Status the stage map picks

Admins write the files; ``mappings/fields.yaml`` and ``mappings/stages.yaml`` in the repository
are the commented reference.
"""

from crmbridge.mapping.loader import load_mapping
from crmbridge.mapping.mapper import FieldMapping, FieldRule, OnParseError, Unmapped
from crmbridge.mapping.preflight import preflight
from crmbridge.mapping.stages import Stage, StageMap
from crmbridge.mapping.transforms import TRANSFORMS

__all__ = [
    "TRANSFORMS",
    "FieldMapping",
    "FieldRule",
    "OnParseError",
    "Stage",
    "StageMap",
    "Unmapped",
    "load_mapping",
    "preflight",
]
