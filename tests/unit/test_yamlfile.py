"""Unit tests for located YAML loading: 1-based lines, syntax errors and duplicate keys."""

from pathlib import Path

import pytest

from crmbridge.errors import ConfigError, Location
from crmbridge.yamlfile import Node, Problems, check_keys, get_bool, get_text, load_yaml, parse_yaml

DOC = """\
# a comment
name: BANT
criteria:
  - name: budget
    value: 1.50
  - {name: authority, value: 50_000}
nested:
  key: x
empty:
"""


def test_mapping_values_report_their_key_line() -> None:
    """A value's location is its key's 1-based line in the named file."""
    root = parse_yaml(DOC, "mappings/q.yaml")
    name = root.get("name")
    assert name is not None
    assert name.location == Location("mappings/q.yaml", 2)
    assert str(name.location) == "mappings/q.yaml:2"


def test_list_items_report_their_own_line() -> None:
    """Block and flow list items each point at their own line."""
    criteria = parse_yaml(DOC, "q.yaml").get("criteria")
    assert criteria is not None
    assert [item.line for item in criteria.elements()] == [4, 6]


def test_keys_of_flow_mappings_are_located() -> None:
    """A key inside a flow mapping is located on its line."""
    criteria = parse_yaml(DOC, "q.yaml").get("criteria")
    assert criteria is not None
    second = list(criteria.elements())[1]
    value = second.get("value")
    assert value is not None
    assert value.line == 6


def test_an_empty_value_points_at_its_own_key() -> None:
    """A key with no value is located on its own line, not on the next key's."""
    empty = parse_yaml(DOC, "q.yaml").get("empty")
    assert empty is not None
    assert empty.line == 9
    assert empty.value is None


def test_plain_strips_round_trip_types() -> None:
    """plain() returns built-in types, so ruamel's float/int subclasses never leak out."""
    data = parse_yaml(DOC, "q.yaml").plain()
    first, second = data["criteria"]
    assert type(data) is dict
    assert type(first["value"]) is float
    assert type(second["value"]) is int
    assert second["value"] == 50000


def test_syntax_error_carries_line_column_and_hint(tmp_path: Path) -> None:
    """A YAML syntax error becomes a ConfigError with the parser's line:column and a hint."""
    path = tmp_path / "fields.yaml"
    path.write_text("object: Lead\nfields:\n  a: 1\n   b: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    problem = caught.value.problems[0]
    assert str(problem.location) == f"{path}:4:5"
    assert problem.message == "not valid YAML: mapping values are not allowed here"
    assert problem.hint


def test_unclosed_bracket_names_the_line_it_opened_on() -> None:
    """An unclosed flow list is reported where the parser noticed, naming where it opened."""
    with pytest.raises(ConfigError) as caught:
        parse_yaml("object: Lead\nfields: [a,\nother: 1\n", "f.yaml")
    problem = caught.value.problems[0]
    assert "started on line 2" in problem.message


def test_tab_indentation_is_located(tmp_path: Path) -> None:
    """A tab used for indentation is reported at its line."""
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\nb:\n\tc: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    assert caught.value.problems[0].location.line == 3


def test_duplicate_key_is_an_error_at_the_repeat() -> None:
    """A key given twice in one mapping is an error at the second occurrence."""
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a: 1\nb: 2\na: 3\n", "dup.yaml")
    problem = caught.value.problems[0]
    assert problem.location.line == 3
    assert 'duplicate key "a"' in problem.message
    assert problem.hint is not None
    assert "only once" in problem.hint


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing file is a ConfigError naming it, with a hint, not a FileNotFoundError."""
    with pytest.raises(ConfigError) as caught:
        load_yaml(tmp_path / "nope.yaml", source="mappings/nope.yaml")
    problem = caught.value.problems[0]
    assert str(problem.location) == "mappings/nope.yaml"
    assert problem.message == "file not found"
    assert problem.hint


def test_non_utf8_file_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    """A file in another encoding is reported at the line of the first bad byte."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: 1\nb: Jörg\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    assert caught.value.problems[0].location.line == 2


def test_check_keys_reports_unknown_key_with_suggestion() -> None:
    """An unknown key is reported at its line with a close match and the valid keys."""
    root = parse_yaml("name: x\nproprety: budget\n", "f.yaml")
    problems = Problems()
    check_keys(root, problems, ("name", "property"), what="this criterion")
    [problem] = problems.items
    assert str(problem.location) == "f.yaml:2"
    assert problem.message == 'unknown key "proprety" in this criterion'
    assert problem.hint == 'did you mean "property"? valid keys: name, property'


def test_check_keys_reports_missing_required_key() -> None:
    """A missing required key is reported at the mapping's line."""
    root = parse_yaml("x:\n  name: y\n", "f.yaml")
    node = root.get("x")
    assert node is not None
    problems = Problems()
    check_keys(node, problems, ("name", "op"), required=("op",), what="this criterion")
    assert [(p.location.line, p.message) for p in problems.items] == [
        (1, 'this criterion has no "op"')
    ]


def test_typed_getters_report_wrong_types() -> None:
    """get_text and get_bool report a value of the wrong type at its line."""
    root = parse_yaml("a: 1\nb: maybe\n", "f.yaml")
    problems = Problems()
    assert get_text(root, "a", problems, what="x") is None
    assert get_bool(root, "b", problems, default=False, what="x") is False
    assert [p.location.line for p in problems.items] == [1, 2]


def test_plain_data_is_located_by_key_path() -> None:
    """Data without lines (from_dict) is located by its key path instead."""
    node = Node({"criteria": [{"op": "gt"}]}, "<dict>")
    criteria = node.get("criteria")
    assert criteria is not None
    op = next(criteria.elements()).get("op")
    assert op is not None
    assert str(op.location) == "<dict>:criteria[0].op"


def test_problems_are_raised_together_in_file_order() -> None:
    """raise_if_any lists every problem, sorted by line."""
    problems = Problems()
    problems.add(Location("f.yaml", 9), "second")
    problems.add(Location("f.yaml", 2), "first", "a hint")
    with pytest.raises(ConfigError) as caught:
        problems.raise_if_any()
    assert [p.message for p in caught.value.problems] == ["first", "second"]
    assert str(caught.value) == "f.yaml:2: first\n    hint: a hint\nf.yaml:9: second"
