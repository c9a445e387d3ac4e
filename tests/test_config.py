"""Agency configs: the demo configs validate; errors name the file, the field and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CONFIGS
from linkage.config import load_config
from linkage.config.agency import AgencyConfig
from linkage.errors import ConfigError

MINIMAL = """\
agency: {name: police, kind: police}
input: {format: csv}
identifiers:
  record_id: {column: id}
"""


@pytest.mark.parametrize("name", ["police", "prosecution", "court", "prison", "probation"])
def test_demo_configs_validate(name):
    config = load_config(CONFIGS / f"{name}.yaml", AgencyConfig)
    assert config.agency.name == name
    assert config.identifiers.record_id is not None


def load_text(tmp_path: Path, text: str) -> AgencyConfig:
    path = tmp_path / "agency.yaml"
    path.write_text(text)
    return load_config(path, AgencyConfig)


def test_minimal_config(tmp_path):
    config = load_text(tmp_path, MINIMAL)
    assert config.input.encoding == "utf-8" and config.attributes == []


def test_unknown_key_names_file_field_and_line(tmp_path):
    text = MINIMAL + "  surnmae: {column: sn}\n"
    with pytest.raises(ConfigError) as exc:
        load_text(tmp_path, text)
    msg = str(exc.value)
    assert "agency.yaml" in msg and "identifiers.surnmae" in msg and "line 5" in msg and "unknown key" in msg


def test_wrong_type_in_list_names_the_line(tmp_path):
    text = (
        MINIMAL
        + "attributes:\n"
        + "  - {column: a, type: date, formats: ['%d/%m/%Y']}\n"
        + "  - {column: b, type: integer, min: x}\n"
    )
    with pytest.raises(ConfigError) as exc:
        load_text(tmp_path, text)
    assert "attributes.1" in str(exc.value) and "line 7" in str(exc.value)


@pytest.mark.parametrize(
    "extra, message",
    [
        ("attributes:\n  - {column: id, type: code}\n", "is an identifier"),
        ("attributes:\n  - {column: notes, type: category}\n", "closed list"),
        ("attributes:\n  - {column: x, name: dob, type: code}\n", "reserved"),
        ("input2: 1\n", "unknown key"),
    ],
)
def test_semantic_errors(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        load_text(tmp_path, MINIMAL + extra)


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_text(tmp_path, "agency: [unclosed\n")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", AgencyConfig)


def test_date_format_must_have_all_parts(tmp_path):
    text = MINIMAL.replace(
        "  record_id: {column: id}\n",
        "  record_id: {column: id}\n  date_of_birth: {column: d, formats: ['%Y']}\n",
    )
    with pytest.raises(ConfigError, match="day, a month and a year"):
        load_text(tmp_path, text)


def test_utf16_rejected(tmp_path):
    with pytest.raises(ConfigError, match="not supported"):
        load_text(tmp_path, MINIMAL.replace("{format: csv}", "{format: csv, encoding: utf-16}"))


# --- error lines and suggestions ---------------------------------------------------------------------

POLICE_TEXT = (CONFIGS / "police.yaml").read_text(encoding="utf-8")


def _error(text: str) -> str:
    from linkage.config.loader import parse_config

    with pytest.raises(ConfigError) as info:
        parse_config(text, AgencyConfig, Path("police.yaml"))
    return str(info.value)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_unknown_key_in_a_tagged_item_points_at_its_own_line_and_suggests():
    text = POLICE_TEXT.replace(
        "    type: category\n    values: [M, F]", "    type: category\n    valuez: [M, F]"
    )
    assert f"line {_line_of(text, 'valuez:')}, field 'attributes.8.valuez': unknown key" in _error(text)
    assert "did you mean 'values'?" in _error(text)


def test_unknown_nested_key_suggests_the_nearest_valid_one():
    dob_formats = '    formats: ["%d/%m/%Y"]\n'
    text = POLICE_TEXT.replace(dob_formats, dob_formats + "    on_invalide: reject\n", 1)
    message = _error(text)
    assert f"line {_line_of(text, 'on_invalide')}, " in message and "did you mean 'on_invalid'?" in message


def test_misspelt_union_tag_names_the_missing_key():
    text = POLICE_TEXT.replace(
        "  - column: victim_sex\n    type: category", "  - column: victim_sex\n    typ: category"
    )
    message = _error(text)
    assert f"line {_line_of(text, 'typ: category')}, " in message
    assert "missing key 'type'; found 'typ': did you mean 'type'?" in message


def test_no_suggestion_for_a_key_like_nothing_valid():
    text = POLICE_TEXT.replace("age_band:\n", "age_band:\n  zzzzzz: 1\n")
    message = _error(text)
    assert "age_band.zzzzzz" in message and "did you mean" not in message
