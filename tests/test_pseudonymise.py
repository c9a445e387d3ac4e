"""`linkage pseudonymise`: output contract, bad input, atomicity and the absence of any plaintext."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import CONFIGS, CPS_HEADER, POLICE_HEADER, POLICE_ROWS, agency_config, write_csv
from linkage.config import load_config
from linkage.config.agency import AgencyConfig, OnInvalid
from linkage.errors import ConfigError, InputError
from linkage.extract import pseudonymise as pseudo_mod
from linkage.extract.pseudonymise import pseudonymise
from linkage.tokens.spec import TOKEN_COLUMN_NAMES


def run(keys, config_name: str, input_path: Path, out: Path, **kw):
    config = agency_config(config_name) if isinstance(config_name, str) else config_name
    kw.setdefault("workers", 1)
    return pseudonymise(
        config,
        CONFIGS / f"{config.agency.name}.yaml",
        keys.project,
        input_path,
        out,
        signing_key=keys.signing(config.agency.name),
        **kw,
    )


def csv_line(values: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def rejects_of(result) -> list[dict]:
    with open(result.rejects, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_output_contract(keys, police_csv, tmp_path):
    result = run(keys, "police", police_csv, tmp_path / "out")
    table = pq.read_table(result.parquet)
    m = result.manifest_data
    assert (m.counts.read, m.counts.written, m.counts.rejected) == (3, 3, 0)
    assert table.column("source_row").to_pylist() == [1, 2, 3]
    assert set(TOKEN_COLUMN_NAMES) <= set(table.column_names)
    assert table.schema.field("dob").type == pa.int64()
    assert table.column("sex").to_pylist() == ["M", "F", None]
    assert table.column("force_area").to_pylist() == ["E23000001", "E23000001", "W15000002"]
    assert table.column("da_flag").to_pylist() == [True, False, True]
    assert table.column("police_outcome").to_pylist() == [16, None, 1]
    assert table.column("ethnicity").to_pylist() == ["White", None, "Black"]
    assert table.column("age_band").to_pylist() == ["45-54", "35-44", "25-34"]
    assert table.column("fn2").to_pylist()[1] is None  # empty middle name: NULL, not a token of ""
    assert table.column("pc").to_pylist()[2] is None  # "NFA" is a configured missing value
    assert table.column("pnc").null_count == 2
    assert m.dropped_columns == ["officer_notes"]
    assert m.token_coverage["fn1"] == 3 and m.token_coverage["pnc"] == 1
    assert m.signer is not None and m.duplicate_record_keys == 0
    assert json.loads(result.manifest.read_text())["output"]["sha256"] == m.output.sha256
    assert rejects_of(result) == []


def test_record_keys_are_stable_and_agency_scoped(keys, police_csv, tmp_path):
    a = pq.read_table(run(keys, "police", police_csv, tmp_path / "a").parquet)
    b = pq.read_table(run(keys, "police", police_csv, tmp_path / "b").parquet)
    assert a.column("record_key") == b.column("record_key")
    assert len(set(a.column("record_key").to_pylist())) == 3


def test_no_plaintext_identifier_in_any_output(keys, police_csv, tmp_path, run_cli, passphrase_env):
    out = tmp_path / "out"
    res = run_cli(*keys.pseudonymise_args(police_csv, out), "--json")
    assert res.exit_code == 0, res.stderr
    secrets: list[str] = []
    for row in POLICE_ROWS:
        rec = dict(zip(POLICE_HEADER, row, strict=True))
        secrets += [rec[c] for c in ("crime_ref", "urn", "forename", "surname", "dob", "postcode", "pnc_id")]
        secrets += [rec["forename"].upper(), rec["surname"].upper(), rec["postcode"].replace(" ", "")]
        d, mth, y = rec["dob"].split("/")
        secrets += [f"{y}-{mth}-{d}", f"{y}{mth}{d}"]
    secrets += ["FEATHERSTONEHAUGH", "SMYTHE", "WOLSTENHOLME", "01/0012345", "0012345", "enough"]
    secrets = [s for s in secrets if s and s not in ("NFA",)]
    table = pq.read_table(out / "police.parquet")
    values = {str(v) for col in table.columns for v in col.to_pylist()}
    blobs = {p.name: p.read_bytes() for p in out.iterdir()} | {
        "stdout": res.stdout.encode(),
        "stderr": res.stderr.encode(),
    }
    for secret in secrets:
        assert not any(secret in v for v in values), f"{secret!r} found in a value"
        for name, blob in blobs.items():
            assert secret.encode() not in blob, f"{secret!r} found in {name}"
            assert secret.encode("utf-16-le") not in blob


def test_bad_values_are_blanked_and_only_unusable_rows_rejected(keys, tmp_path):
    good = POLICE_ROWS[0]

    def row(i: int, **changes) -> list[str]:
        rec = dict(zip(POLICE_HEADER, good, strict=True)) | {"crime_ref": f"CR9{i:03d}"} | changes
        return [rec[c] for c in POLICE_HEADER]

    rows = [
        row(1),
        row(2, dob="31/02/1990"),  # invalid date: blanked, the name keeps the row usable
        row(3, pnc_id="2001/0012345A"),  # wrong check character: kept unverified
        row(4, crime_ref=""),  # missing record id: rejected
        row(5, ethnicity_code="ZZ"),  # not in the category map: blanked
        row(6, outcome="99"),  # integer out of range: blanked
        row(7, postcode="NOT A POSTCODE"),  # blanked
        row(8, surname="", dob="31/02/1990", pnc_id="garbage"),  # nothing usable left: rejected
        row(9, gender="Robot"),  # unmapped sex: blanked and counted
    ]
    path = tmp_path / "raw" / "police.csv"
    path.parent.mkdir()
    write_csv(path, POLICE_HEADER, rows)
    with open(path, "ab") as fh:
        fh.write(b"CR9010,too,few,fields\n")  # wrong column count
        fh.write(csv_line(row(11)).replace("Bartholomew", "Barth\xffolomew").encode("latin-1"))  # bad UTF-8
        fh.write(b'CR9012,"broken"quote,' + csv_line(row(12)[2:]).encode())  # unparseable CSV
        fh.write(csv_line(row(13)).encode())
    result = run(keys, "police", path, tmp_path / "out")
    m = result.manifest_data
    assert m.counts.read == 13 and m.counts.read == m.counts.written + m.counts.rejected
    entries = rejects_of(result)
    rejects = {int(r["source_row"]): r for r in entries if r["action"] == "row rejected"}
    assert set(rejects) == {4, 8, 10, 11, 12}
    assert "record id is missing" in rejects[4]["reason"]
    assert "no usable identifier" in rejects[8]["reason"]
    assert f"expected {len(POLICE_HEADER)} fields, found 4" in rejects[10]["reason"]
    assert "not valid utf-8" in rejects[11]["reason"]
    assert "unparseable CSV" in rejects[12]["reason"]
    assert all(int(r["line"]) == int(r["source_row"]) + 1 for r in entries)  # one line per record here
    assert rejects[8]["record"].startswith("CR9008,")  # the raw record is kept (inside the agency)
    problems = {
        (int(r["source_row"]), r["column"], r["action"]) for r in entries if r["action"] != "row rejected"
    }
    assert problems == {
        (2, "dob", "value blanked"),
        (3, "pnc_id", "value kept unverified"),
        (5, "ethnicity_code", "value blanked"),
        (6, "outcome", "value blanked"),
        (7, "postcode", "value blanked"),
        (9, "gender", "value blanked"),
        (8, "dob", "value blanked"),  # a rejected row's field problems say why nothing usable was left
        (8, "pnc_id", "value blanked"),
    }
    assert all(r["record"] == "" for r in entries if r["action"] != "row rejected")
    # counted over every parsed row, the rejected row 8 included
    assert m.values_blanked == {
        "date_of_birth": {"date matches none of the formats": 2},
        "pnc": {"not a valid pnc or cro": 1},
        "ethnicity_code": {"value is not one of the configured categories": 1},
        "outcome": {"integer outside 1..22": 1},
        "postcode": {"not a UK postcode": 1},
        "sex": {"value is not in the sex map": 1},
    }
    assert m.values_unverified == {"pnc": {"check character wrong": 1}}
    table = pq.read_table(result.parquet)
    assert table.column("source_row").to_pylist() == [1, 2, 3, 5, 6, 7, 9, 13]
    by_row = dict(zip(table.column("source_row").to_pylist(), table.to_pylist(), strict=True))
    assert by_row[2]["dob"] is None and by_row[2]["dob_weak"] is None and by_row[2]["sn"] is not None
    assert by_row[3]["pnc"] is not None and by_row[3]["pnc_weak"] is True
    assert by_row[1]["pnc_weak"] is False and by_row[1]["dob_weak"] is False
    assert by_row[9]["sex"] is None
    assert sum(m.rejects_by_reason.values()) == 5


def test_strict_field_rejects_the_row(keys, tmp_path):
    config = agency_config("police")
    ids = config.identifiers.model_copy(
        update={"ids": [config.identifiers.ids[0].model_copy(update={"on_invalid": OnInvalid.reject})]}
    )
    config = config.model_copy(update={"identifiers": ids})
    rows = [list(POLICE_ROWS[0]), list(POLICE_ROWS[1])]
    rows[1][POLICE_HEADER.index("pnc_id")] = "2001/0012345A"  # wrong check letter
    path = tmp_path / "raw" / "police.csv"
    path.parent.mkdir()
    write_csv(path, POLICE_HEADER, rows)
    result = run(keys, config, path, tmp_path / "out")
    (reject,) = rejects_of(result)
    assert (reject["source_row"], reject["action"]) == ("2", "row rejected")
    assert "check character wrong" in reject["reason"]


def test_multiline_quoted_values_and_blank_lines(keys, tmp_path):
    path = tmp_path / "police.csv"
    rows = [list(POLICE_ROWS[0]), list(POLICE_ROWS[1])]
    rows[0][-1] = "line one\nline two, with comma"
    write_csv(path, POLICE_HEADER, rows)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n")  # trailing blank line: not a record
        fh.write(csv_line(POLICE_ROWS[2]))
    result = run(keys, "police", path, tmp_path / "out", rejects_dir=tmp_path / "rej")
    assert result.manifest_data.counts.read == 3 and result.manifest_data.counts.rejected == 0
    assert pq.read_table(result.parquet).column("source_row").to_pylist() == [1, 2, 3]


@pytest.mark.parametrize("workers", [1, 2])
def test_small_chunks_and_processes_give_identical_output(keys, tmp_path, workers):
    rows = []
    for i in range(300):
        r = list(POLICE_ROWS[i % 3])
        r[0] = f"CR{i:05d}"
        if i % 7 == 0:
            r[-1] = f"multi\nline {i}"
        if i % 11 == 0:
            r[4], r[5], r[8] = "", "99/99/1990", "x"  # nothing usable left: rejected
        elif i % 5 == 0:
            r[5] = "99/99/1990"  # blanked
        rows.append(r)
    path = write_csv(tmp_path / "police.csv", POLICE_HEADER, rows)
    whole = run(keys, "police", path, tmp_path / "whole", rejects_dir=tmp_path / "r1", max_reject_rate=1)
    chunked = run(
        keys,
        "police",
        path,
        tmp_path / "chunked",
        rejects_dir=tmp_path / "r2",
        chunk_bytes=512,
        workers=workers,
        max_reject_rate=1,
    )
    a, b = pq.read_table(whole.parquet), pq.read_table(chunked.parquet)
    assert a.equals(b)
    assert chunked.manifest_data.counts == whole.manifest_data.counts
    assert whole.manifest_data.counts.rejected == 28
    assert whole.manifest_data.values_blanked == chunked.manifest_data.values_blanked
    assert rejects_of(whole) == [r | {} for r in rejects_of(chunked)]
    assert b.column("source_row").to_pylist() == [i + 1 for i in range(300) if i % 11]


def test_same_person_gets_same_tokens_across_agency_layouts(keys, tmp_path):
    police = write_csv(tmp_path / "police.csv", POLICE_HEADER, [POLICE_ROWS[0]])
    cps_row = [
        "CPS1",
        "01-YE-0123456",
        "FEATHERSTONEHAUGH, Bartholomew Quentin",
        "1971-03-05",
        "M",
        "sw1a1aa",
        "01/12345H",
        "London North",
        "2021-03-01",
        "Charge",
        "2021-03-02",
        "008/01",
        "1",
    ]
    cps = write_csv(tmp_path / "cps.csv", CPS_HEADER, [cps_row], delimiter="|")
    p = pq.read_table(run(keys, "police", police, tmp_path / "p").parquet).to_pylist()[0]
    c = pq.read_table(run(keys, "prosecution", cps, tmp_path / "c").parquet).to_pylist()[0]
    for col in ("fn1", "fn2", "fn1_canon", "sn", "dob", "dob_md", "pc", "pc_sector", "pnc", "case_ref"):
        assert p[col] == c[col] is not None, col
    assert p["record_key"] != c["record_key"]


def test_cp1252_input(keys, tmp_path):
    config = agency_config("court")
    header = [*config.source_columns(), "defendant_address", "judge_name"]
    values = {
        "hearing_id": "H1",
        "case_urn": "01YE0123456",
        "defendant_forenames": "Zoë Siobhán",
        "defendant_surname": "Núñez",
        "defendant_dob": "05-Mar-1990",
        "defendant_sex": "F",
        "defendant_postcode": "M1 1AE",
        "pnc_id": "",
        "court_code": "B01LY00",
        "offence_code": "008/01",
        "first_hearing_date": "01-Jun-2021",
        "verdict": "Convicted",
        "verdict_date": "01-Jul-2021",
        "sentence_type": "Fine",
        "sentence_days": "",
        "sentence_date": "01-Jul-2021",
        "restraining_order": "Y",
        "defendant_address": "1 Street",
        "judge_name": "X",
    }
    path = write_csv(
        tmp_path / "court.csv", header, [[values[h] for h in header]], encoding="cp1252", delimiter=";"
    )
    result = run(keys, config, path, tmp_path / "out")
    assert result.manifest_data.counts.written == 1
    police = write_csv(tmp_path / "police.csv", POLICE_HEADER, [POLICE_ROWS[1]])
    p = pq.read_table(run(keys, "police", police, tmp_path / "p").parquet).to_pylist()[0]
    c = pq.read_table(result.parquet).to_pylist()[0]
    assert c["fn1"] == p["fn1"]  # Zoë in cp1252 and in UTF-8 give one token
    assert c["restraining_order"] is True and c["verdict"] == "Convicted"


def test_parquet_input_matches_csv(keys, police_csv, tmp_path):
    table = pa.table({h: [r[i] for r in POLICE_ROWS] for i, h in enumerate(POLICE_HEADER)})
    pq.write_table(table, tmp_path / "police.parquet")
    data = agency_config("police").model_dump()
    data["input"] = {"format": "parquet"}
    config = AgencyConfig.model_validate(data)
    from_parquet = pq.read_table(run(keys, config, tmp_path / "police.parquet", tmp_path / "o1").parquet)
    from_csv = pq.read_table(run(keys, "police", police_csv, tmp_path / "o2").parquet)
    assert from_parquet.equals(from_csv)


def test_missing_column_fails_before_any_output(keys, tmp_path):
    path = write_csv(tmp_path / "police.csv", POLICE_HEADER[:-3], [r[:-3] for r in POLICE_ROWS])
    with pytest.raises(
        InputError, match="missing from the input: \\['victim_relationship', 'suspect_police_employee'\\]"
    ):
        run(keys, "police", path, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "police.rejects.csv").exists()


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"\xff\xfe\x00junk\n", "cannot be read")])
def test_unreadable_inputs(keys, tmp_path, content, message):
    path = tmp_path / "police.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        run(keys, "police", path, tmp_path / "out")


def _with_victims(ref: str) -> list[str]:
    row = [ref, *POLICE_ROWS[0][1:]]
    for column, value in (
        ("victim1_forename", "Alice"),
        ("victim1_surname", "Victim"),
        ("victim1_dob", "01/02/1980"),
        ("victim2_forename", "Bob"),
        ("victim2_surname", "Other"),
        ("victim2_dob", "03/04/1975"),
    ):
        row[POLICE_HEADER.index(column)] = value
    return row  # fmt: skip


@pytest.mark.parametrize("workers", [1, 2])
def test_a_repeated_record_id_refuses_the_extract_and_names_the_rows(keys, tmp_path, workers):
    """Two rows under one record id (one crime, two suspects; or a row extracted twice) cannot be told
    apart by the linkage: refused with the rows named, never written (the manifest only counted them).
    Rows are counted, not records: the repeated row's two victim mentions repeat keys too."""
    rows = [_with_victims(f"CR{i:05d}") for i in range(300)]
    rows.insert(250, _with_victims(f"CR{7:05d}"))  # data row 251 repeats data row 8
    path = write_csv(tmp_path / "police.csv", POLICE_HEADER, rows)
    said = r"1 row\(s\) repeat the record id of an earlier row \(column crime_ref; first: data row 251 "
    said += r"repeats row 8\)"
    with pytest.raises(pseudo_mod.ExtractRefused, match=said):
        run(keys, "police", path, tmp_path / "out", workers=workers, chunk_bytes=4096)
    assert not (tmp_path / "out" / "police.parquet").exists()
    assert not (tmp_path / "out" / "police.manifest.json").exists()


def test_a_record_id_of_several_columns_tells_two_suspects_of_one_crime_apart(keys, tmp_path):
    """One row per crime-suspect: the crime reference repeats, the pair (crime, suspect) does not. A
    missing part rejects the row, naming the column; a repeated pair still refuses the extract."""
    from linkage.config.agency import RecordIdField

    config = agency_config("police")
    two = RecordIdField(columns=["crime_ref", "suspect_no"])
    config = config.model_copy(
        update={"identifiers": config.identifiers.model_copy(update={"record_id": two})}
    )
    header = [*POLICE_HEADER, "suspect_no"]
    rows = [[f"CR{i // 2:05d}", *POLICE_ROWS[0][1:], str(i % 2 + 1)] for i in range(200)]
    rows[7][-1] = " "  # no suspect number: that row alone is rejected
    path = write_csv(tmp_path / "police.csv", header, rows)
    result = run(keys, config, path, tmp_path / "out", max_reject_rate=0.05)
    assert (result.manifest_data.counts.written, result.manifest_data.counts.rejected) == (199, 1)
    keys_ = pq.read_table(tmp_path / "out" / "police.parquet").column("record_key").to_pylist()
    assert len(set(keys_)) == 199
    (rejected,) = list(csv.DictReader((tmp_path / "police.rejects.csv").open(encoding="utf-8")))
    assert (rejected["source_row"], rejected["column"], rejected["reason"]) == (
        "8",
        "suspect_no",
        "record id is missing",
    )
    rows[7][-1] = "1"  # now the same pair as row 7
    path = write_csv(tmp_path / "again.csv", header, rows)
    with pytest.raises(
        pseudo_mod.ExtractRefused,
        match=r"\(column crime_ref \+ suspect_no; first: data row 8 repeats row 7\)",
    ):
        run(keys, config, path, tmp_path / "out2")
    with pytest.raises(ValueError, match="either `column` or `columns`"):
        RecordIdField(column="a", columns=["b", "c"])


def test_rejects_never_inside_the_output_directory(keys, police_csv, tmp_path):
    with pytest.raises(ConfigError, match="inside the output directory"):
        run(keys, "police", police_csv, tmp_path / "out", rejects_dir=tmp_path / "out" / "rej")


def test_interrupted_run_leaves_no_output(keys, tmp_path, monkeypatch):
    rows = [[f"CR{i:05d}", *POLICE_ROWS[0][1:]] for i in range(200)]
    path = write_csv(tmp_path / "police.csv", POLICE_HEADER, rows)
    calls = {"n": 0}
    original = pseudo_mod.BatchTransformer.transform

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pseudo_mod.BatchTransformer, "transform", failing)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run(keys, "police", path, out, chunk_bytes=1024)
    assert list(out.iterdir()) == []  # no parquet, no manifest, no temporary file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "police.csv"]


def test_signing_key_must_belong_to_the_agency(keys, police_csv, tmp_path):
    config = agency_config("police")
    with pytest.raises(ConfigError, match="belongs to agency 'court'"):
        pseudonymise(
            config,
            CONFIGS / "police.yaml",
            keys.project,
            police_csv,
            tmp_path / "o",
            signing_key=keys.signing("court"),
        )


def test_config_hash_and_spec_in_manifest(keys, police_csv, tmp_path):
    import hashlib

    m = run(keys, "police", police_csv, tmp_path / "out").manifest_data
    assert m.config_sha256 == hashlib.sha256((CONFIGS / "police.yaml").read_bytes()).hexdigest()
    assert m.token_spec_version == "2" and m.key_fingerprint == keys.project.fingerprint
    assert load_config(CONFIGS / "police.yaml", AgencyConfig).agency.kind.value == m.kind.value


def test_unclosed_quote_does_not_swallow_memory_or_rows(keys, tmp_path, monkeypatch):
    from linkage.extract import reader

    monkeypatch.setattr(reader, "MAX_RECORD_BYTES", 4096)
    rows = [[f"CR{i:05d}", *POLICE_ROWS[0][1:-1], "notes"] for i in range(400)]
    path = write_csv(tmp_path / "police.csv", POLICE_HEADER, rows)
    text = path.read_text().splitlines(keepends=True)
    text[3] = text[3].replace(",notes", ',"notes unclosed')  # record 3 opens a quote it never closes
    path.write_text("".join(text))
    result = run(keys, "police", path, tmp_path / "out", chunk_bytes=1024)
    m = result.manifest_data
    assert m.counts.read == m.counts.written + m.counts.rejected
    assert m.counts.written > 300  # reading resumed after the bounded unclosed record
    swallowed = sum(r["record"].count("\n") + 1 for r in rejects_of(result))
    assert m.counts.written + swallowed == 400  # every line is either written or kept in a reject


@pytest.mark.parametrize("pnc_on_invalid", ["reject", "missing"])
def test_whole_column_path_matches_the_per_value_path(keys, monkeypatch, pnc_on_invalid):
    """Case references and PNC ids of ASCII columns are done whole-column in Arrow: same result."""
    from linkage.extract import transform as transform_mod

    base = agency_config("police")
    ids = base.identifiers.model_copy(
        update={"ids": [base.identifiers.ids[0].model_copy(update={"on_invalid": OnInvalid(pnc_on_invalid)})]}
    )
    config = base.model_copy(update={"identifiers": ids})
    urns = ["01YE0123456", " 01-ye-7 ", "", "N/K", "nfa", "\x1cNK\x1f", "-- --", " \t ", "x", "a", "b"]
    pncs = [
        "2001/12345H",
        "01/0012345H",
        " 01 / 0012345h ",
        "2001/12345A",
        "12/abc",
        "N/K",
        "",
        "\x1f",
        "0112345678Z",
        "123456/89A",  # a CRO number (wrong check letter) in the PNC column
        "12345/99B",  # not a PNC id: read as a CRO number
    ]
    n = len(urns)
    row = dict(zip(POLICE_HEADER, POLICE_ROWS[0], strict=True))
    columns = {c: pa.array([row[c]] * n, type=pa.string()) for c in config.source_columns()}
    columns |= {
        "urn": pa.array(urns),
        "pnc_id": pa.array(pncs),
        "crime_ref": pa.array([f"R{i}" for i in range(n)]),
    }
    whole = transform_mod.BatchTransformer(config, keys.project.subkeys()).transform(
        columns, list(range(1, n + 1))
    )
    monkeypatch.setattr(transform_mod, "is_ascii", lambda values: False)
    per_value = transform_mod.BatchTransformer(config, keys.project.subkeys()).transform(
        columns, list(range(1, n + 1))
    )
    assert whole.batch.equals(per_value.batch)
    assert whole.rejects == per_value.rejects and whole.problems == per_value.problems
    assert whole.counts == per_value.counts
    assert whole.batch.num_rows > 0 and (whole.rejects or whole.problems)
