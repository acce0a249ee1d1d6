"""One whole configuration: the qualification rules and the field and stage map, with their
policies, loaded and checked together.

A :class:`Configuration` is immutable and self-consistent (the files are checked against each
other: a tier's stage is a stage of ``stages.yaml``, a field a tier sets is not also mapped), so
a running pipeline can swap one for another between two pages without ever judging with half of
each. What needs Salesforce's describe is :meth:`Configuration.check_schema`'s job.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from crmbridge.errors import ConfigError, ConfigProblem, Location
from crmbridge.mapping import FieldMapping, load_mapping
from crmbridge.mapping.preflight import (
    access_problems,
    fixed_value_problems,
    preflight,
    unknown_field,
)
from crmbridge.model import ObjectSchema
from crmbridge.rules import RuleSet, load_rule_set
from crmbridge.rules.model import Group, Rule

__all__ = ["RULES_FILE", "Configuration", "load_configuration"]

RULES_FILE = "qualification.yaml"


@dataclass(frozen=True)
class Configuration:
    """The rules and the map that judge contacts together. ``source`` says where they came
    from (a directory, or a proposed rule file for a what-if)."""

    mapping: FieldMapping
    rules: RuleSet
    source: str = ""

    @property
    def judged_properties(self) -> frozenset[str]:
        """The HubSpot properties judging a contact reads (rules, field map, stage map)."""
        return self.rules.source_properties | self.mapping.source_properties

    @property
    def pulled_properties(self) -> frozenset[str]:
        """What a pass asks HubSpot for: what is judged, and the lead source reports use."""
        return self.judged_properties | {self.mapping.lead_source}

    def property_readers(self) -> dict[str, list[str]]:
        """Who reads each judged property: ``criterion "budget"``, ``field Budget__c`` …"""
        readers: dict[str, list[str]] = defaultdict(list)
        _rule_readers(self.rules.spec.criteria, readers)
        for rule in self.mapping.rules:
            if rule.source is not None:
                readers[rule.source].append(f"field {rule.target}")
        stage_map = self.mapping.stage_map
        for stage in stage_map.stages if stage_map is not None else ():
            for prop in stage.when:
                readers[prop].append(f'stage "{stage.name}"')
        return dict(readers)

    def check_schema(self, schema: ObjectSchema) -> list[ConfigProblem]:
        """Problems between these files and the Salesforce describe, each at its line."""
        problems = preflight(self.mapping, schema)
        for tier in self.rules.tiers:
            where = tier.location or Location(self.rules.source)
            for name, value in tier.set.items():
                spec = schema.field(name)
                if spec is None:
                    problems.append(unknown_field(name, schema, where))
                    continue
                problems.extend(access_problems(spec, where))
                problems.extend(fixed_value_problems(spec, value, where, truncate=False))
        return problems


def _rule_readers(rules: tuple[Rule, ...], readers: dict[str, list[str]]) -> None:
    for rule in rules:
        if isinstance(rule, Group):
            _rule_readers(rule.criteria, readers)
        else:
            readers[rule.property].append(f'criterion "{rule.name}"')


def cross_problems(mapping: FieldMapping, rules: RuleSet) -> list[ConfigProblem]:
    """What the rules and the map say that contradicts the other file."""
    problems: list[ConfigProblem] = []
    stage_map = mapping.stage_map
    mapped = {rule.target for rule in mapping.rules}
    for tier in rules.tiers:
        where = tier.location or Location(rules.source)
        what = f'tier "{tier.name}"'
        if tier.stage is not None:
            names = stage_map.names if stage_map is not None else ()
            if tier.stage not in names:
                problems.append(
                    ConfigProblem(
                        where,
                        f'{what}: "{tier.stage}" is not a stage of stages.yaml',
                        f"stages: {', '.join(names)}" if names else "add stages.yaml first",
                    )
                )
        for name in tier.set:
            if stage_map is not None and name == stage_map.target:
                problems.append(
                    ConfigProblem(
                        where,
                        f"{what} sets {name}, which the stage map sets",
                        f"write stage: <a stage of stages.yaml> instead of set: {{{name}: …}}",
                    )
                )
            elif name in mapped or name == mapping.external_id_field:
                problems.append(
                    ConfigProblem(
                        where,
                        f"{what} sets {name}, which fields.yaml also sets",
                        f"remove {name} from fields.yaml, or from the tier",
                    )
                )
    return problems


def load_configuration(mappings_dir: Path, *, rules_file: Path | None = None) -> Configuration:
    """Load and check every file under ``mappings_dir`` (the rules from ``rules_file`` when
    given); all problems of all files in one ConfigError."""
    if not mappings_dir.is_dir():
        raise ConfigError(
            ConfigProblem(
                Location(str(mappings_dir)),
                "mappings directory not found",
                hint="set CRMBRIDGE_MAPPINGS_DIR or run from the directory that holds mappings/",
            )
        )
    problems: list[ConfigProblem] = []
    mapping = rules = None
    try:
        mapping = load_mapping(mappings_dir)
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        rules = load_rule_set(rules_file or mappings_dir / RULES_FILE)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if mapping is not None and rules is not None:
        problems.extend(cross_problems(mapping, rules))
    if problems or mapping is None or rules is None:
        raise ConfigError(problems)
    return Configuration(mapping=mapping, rules=rules, source=str(mappings_dir))
