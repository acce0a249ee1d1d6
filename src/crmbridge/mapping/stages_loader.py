"""Read ``stages.yaml`` into a :class:`~crmbridge.mapping.stages.StageMap` (with its ``moves``
policy). Every problem is collected with its ``file:line`` and a hint; nothing raises."""

from __future__ import annotations

import re

from crmbridge.mapping.filespec import MOVE, MOVES, PROPERTY_NAME, STAGE, STAGE_MAP
from crmbridge.mapping.stages import (
    ANY,
    DEFAULT_STAGE,
    EMPTY,
    Move,
    Regression,
    Stage,
    StageMap,
    StagePolicy,
)
from crmbridge.yamlfile import (
    Node,
    Problems,
    check_keys,
    child_or_self,
    get_choice,
    get_text,
    names_in,
)

__all__ = ["STAGES_FILE", "parse_stages"]

STAGES_FILE = "stages.yaml"  # optional: without it no field is set from the contact's stage
_PROPERTY_NAME = re.compile(PROPERTY_NAME)
PROPERTY_HINT = (
    "use the HubSpot property's internal name (Settings > Properties > the property > "
    "internal name), e.g. jobtitle rather than Job Title"
)


def parse_stages(root: Node, problems: Problems) -> StageMap | None:
    if not check_keys(
        root, problems, STAGE_MAP.names, required=STAGE_MAP.required, what=STAGES_FILE
    ):
        return None
    target = get_text(root, "target", problems, what=STAGES_FILE) or "Status"
    default = get_text(root, "default", problems, what=STAGES_FILE)
    stages: list[Stage] = []
    stages_node = root.get("stages")
    if stages_node is not None and not stages_node.is_list:
        problems.add(
            stages_node,
            f'"stages" must be a list, got {stages_node.kind}',
            'each entry: "- name: SQL / when: {lifecyclestage: salesqualifiedlead} / '
            'status: Working - Contacted"',
        )
    seen: set[str] = set()
    for item in stages_node.elements() if stages_node is not None else ():
        stage = _parse_stage(item, problems)
        if stage is None:
            continue
        if stage.name in seen:
            problems.add(
                item, f'stage "{stage.name}" appears twice', "give each stage its own name"
            )
        elif stage.name == DEFAULT_STAGE:
            problems.add(
                item,
                f'a stage cannot be named "{DEFAULT_STAGE}": the name stands for default:',
                "give the stage another name",
            )
            continue
        seen.add(stage.name)
        stages.append(stage)
    default_node = root.get("default")
    names = [stage.name for stage in stages] + ([DEFAULT_STAGE] if default else [])
    moves = root.get("moves")
    return StageMap(
        target=target,
        stages=tuple(stages),
        default=default,
        target_location=child_or_self(root, "target").location,
        default_location=default_node.location if default_node is not None else None,
        policy=_parse_moves(moves, names, problems) if moves is not None else None,
    )


def _parse_moves(node: Node, names: list[str], problems: Problems) -> StagePolicy | None:
    what = '"moves"'
    if not check_keys(node, problems, MOVES.names, required=MOVES.required, what=what):
        return None
    order_node = node.get("order")
    order = _stage_names(order_node, names, problems, what) if order_node is not None else None
    if order is not None and len(set(order)) != len(order):
        problems.add(
            child_or_self(node, "order"), "a stage appears twice in order", "list each once"
        )
    allowed: list[Move] = []
    allowed_node = node.get("allowed")
    if allowed_node is not None and not allowed_node.is_list:
        problems.add(allowed_node, '"allowed" must be a list of moves', "- {from: any, to: Lost}")
    for item in allowed_node.elements() if allowed_node is not None else ():
        move = _parse_move(item, names, problems)
        if move is not None:
            allowed.append(move)
    regression = get_choice(
        node, "regression", Regression, default=Regression.FORBID, problems=problems, what=what
    )
    if order is None:
        return None
    return StagePolicy(order=tuple(order), allowed=tuple(allowed), regression=regression)


def _parse_move(item: Node, names: list[str], problems: Problems) -> Move | None:
    what = "an allowed move"
    if not check_keys(item, problems, MOVE.names, required=MOVE.required, what=what):
        return None
    ends: list[frozenset[str] | None] = []
    for key in ("from", "to"):
        node = item.get(key)
        if node is None:
            return None  # reported by check_keys
        if node.value == ANY:
            ends.append(None)
            continue
        found = _stage_names(node, names, problems, what)
        if found is None:
            return None
        ends.append(frozenset(found))
    return Move(ends[0], ends[1])


def _stage_names(
    node: Node | None, names: list[str], problems: Problems, what: str
) -> list[str] | None:
    """One stage name, or a list of them, each a stage of the map (``default`` included)."""
    if node is None:
        return None
    return names_in(
        node, names, problems, what=what, of=f"a stage of {STAGES_FILE}", listed="stages"
    )


def _parse_stage(item: Node, problems: Problems) -> Stage | None:
    what = "this stage"
    if not check_keys(item, problems, STAGE.names, required=STAGE.required, what=what):
        return None
    name = get_text(item, "name", problems, what=what)
    what = f'stage "{name}"' if name else what
    status = get_text(item, "status", problems, what=what)
    when = _when(child_or_self(item, "when"), problems, what)
    if not name or not status or not when:
        return None
    return Stage(name, when, status, item.location, child_or_self(item, "status").location)


def _when(node: Node, problems: Problems, what: str) -> dict[str, frozenset[str]]:
    if not node.is_mapping or not node.value:
        problems.add(
            node,
            f'{what}: "when" must map HubSpot properties to values',
            "e.g. when: {lifecyclestage: marketingqualifiedlead}; "
            'a catch-all belongs in "default:"',
        )
        return {}
    when: dict[str, frozenset[str]] = {}
    for prop, values in node.items():
        if not isinstance(prop, str) or _PROPERTY_NAME.fullmatch(prop) is None:
            problems.add(
                node.key_node(prop),
                f'{what}: "{prop}" is not a HubSpot property name',
                PROPERTY_HINT,
            )
            continue
        when[prop] = _stage_values(values, problems, what)
    return when


def _stage_values(node: Node, problems: Problems, what: str) -> frozenset[str]:
    items = list(node.elements()) if node.is_list else [node]
    accepted: set[str] = set()
    for item in items:
        value = item.value
        if value is None:
            accepted.add(EMPTY)  # `null` in a list: the property is empty
        elif isinstance(value, str):
            accepted.add(value.strip().casefold())
        elif isinstance(value, int) and not isinstance(value, bool):
            accepted.add(str(int(value)))  # custom lifecycle stage ids are numbers
        else:
            problems.add(item, f"{what}: a stage value must be text, got {item.kind}", "quote it")
    if not items:
        problems.add(node, f"{what}: empty list of values", "list at least one value")
    return frozenset(accepted)
