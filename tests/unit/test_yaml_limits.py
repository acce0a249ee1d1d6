"""Hostile mapping files are refused fast, at their line, before anything walks them."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmbridge.errors import ConfigError, ConfigProblem
from crmbridge.mapping import load_mapping
from crmbridge.rules import MAX_GROUP_DEPTH, RuleSet, load_rule_set
from crmbridge.yamlfile import MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, load_yaml


def refused(path: Path) -> ConfigProblem:
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    [problem] = caught.value.problems
    assert problem.hint
    return problem


def alias_bomb(levels: int = 12) -> str:
    """A billion-laughs document: each anchor repeats the previous one nine times."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_in_values_is_refused_at_the_alias_that_crosses_the_bound(
    tmp_path: Path,
) -> None:
    """Aliases are counted as the values they repeat: the bomb stops at its line."""
    path = tmp_path / "qualification.yaml"
    path.write_text(alias_bomb(), encoding="utf-8")
    problem = refused(path)
    assert problem.location.path == str(path)
    # l3 repeats 7,381 values, so the second *l3 of line 5 carries the count past 20,000.
    assert problem.location.line == 5
    assert f"more than {MAX_YAML_NODES:,} values" in problem.message


def test_alias_bomb_in_a_rule_file_stops_validate(tmp_path: Path) -> None:
    """load_rule_set (what `crmbridge validate` runs) refuses the bomb with file:line."""
    path = tmp_path / "qualification.yaml"
    path.write_text(
        alias_bomb() + "criteria:\n  - {name: a, property: industry, op: in, values: *l11}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"qualification\.yaml:\d+: the file has more than"):
        load_rule_set(path)


def test_oversized_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    """A file over MAX_YAML_BYTES is refused at the line where it crosses the limit."""
    path = tmp_path / "fields.yaml"
    line = "- " + "x" * 98 + "\n"  # 101 bytes
    with path.open("w", encoding="utf-8") as out:
        for _ in range(60 * MAX_YAML_BYTES // len(line)):  # like the 55 MB list that took minutes
            out.write(line)
    problem = refused(path)
    assert problem.location.line == MAX_YAML_BYTES // len(line) + 1
    assert f"larger than {MAX_YAML_BYTES:,} bytes" in problem.message


def test_long_list_under_the_size_limit_is_refused_by_its_count(tmp_path: Path) -> None:
    """A list of more values than a mapping file needs is refused at the value past the bound."""
    path = tmp_path / "fields.yaml"
    path.write_text("values:\n" + "- 1\n" * (MAX_YAML_NODES + 10), encoding="utf-8")
    problem = refused(path)
    # The root mapping, its key and the list count too: item k is value k + 3, on line k + 1.
    assert problem.location.line == MAX_YAML_NODES - 1
    assert "values" in problem.message


def test_deep_nesting_is_refused_at_the_level_too_deep(tmp_path: Path) -> None:
    """Flow and block nesting past MAX_YAML_DEPTH is refused at its line, not a RecursionError."""
    flow = tmp_path / "flow.yaml"
    flow.write_text("x:\n  " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    assert f"nested more than {MAX_YAML_DEPTH} levels" in refused(flow).message
    block = tmp_path / "block.yaml"
    block.write_text("".join("  " * i + "a:\n" for i in range(400)) + "  " * 400 + "x\n")
    problem = refused(block)
    assert problem.location.line == MAX_YAML_DEPTH + 1


def test_alias_inside_the_value_it_names_is_refused(tmp_path: Path) -> None:
    """A recursive alias has no finite expansion: refused at its line."""
    path = tmp_path / "fields.yaml"
    path.write_text("a: &loop\n  b: *loop\n", encoding="utf-8")
    problem = refused(path)
    assert problem.location.line == 2
    assert "*loop" in problem.message


def nested_groups(depth: int) -> str:
    lines = ["criteria:"]
    for level in range(depth):
        pad = "  " * (2 * level)
        lines += [f"{pad}  - name: g{level}", f"{pad}    criteria:"]
    pad = "  " * (2 * depth)
    lines.append(f"{pad}  - {{name: leaf, property: jobtitle, op: present}}")
    return "\n".join(lines) + "\n"


def test_groups_nest_up_to_the_documented_depth(tmp_path: Path) -> None:
    """MAX_GROUP_DEPTH nested groups load and judge."""
    path = tmp_path / "qualification.yaml"
    path.write_text(nested_groups(MAX_GROUP_DEPTH), encoding="utf-8")
    assert load_rule_set(path).source_properties == {"jobtitle"}


def test_groups_nested_too_deep_are_refused_at_the_group_too_deep(tmp_path: Path) -> None:
    """One group more than MAX_GROUP_DEPTH is refused at its line (150 used to be a crash)."""
    path = tmp_path / "qualification.yaml"
    path.write_text(nested_groups(MAX_GROUP_DEPTH + 1), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rule_set(path)
    [problem] = caught.value.problems
    assert problem.location.line == 2 * MAX_GROUP_DEPTH + 2
    assert f"nest more than {MAX_GROUP_DEPTH} deep" in problem.message


def test_groups_nested_150_deep_in_plain_data_are_refused_not_a_crash() -> None:
    """RuleSet.from_dict with 150 nested groups is a ConfigError, not a RecursionError."""
    node: dict[str, object] = {"name": "leaf", "property": "jobtitle", "op": "present"}
    for level in range(150):
        node = {"name": f"g{level}", "criteria": [node]}
    with pytest.raises(ConfigError, match=f"nest more than {MAX_GROUP_DEPTH} deep"):
        RuleSet.from_dict({"criteria": [node]})


def test_hostile_fields_file_fails_validate_with_its_line(tmp_path: Path) -> None:
    """load_mapping (what `crmbridge validate` runs) reports the bomb in fields.yaml."""
    (tmp_path / "fields.yaml").write_text(alias_bomb(), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"fields\.yaml:5: the file has more than"):
        load_mapping(tmp_path)
