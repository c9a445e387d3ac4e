"""The model derived from the token families present: token spec v2 columns (typed ids, generic ids,
addresses, weak markers) on small hand-built Parquet tables, which v1 pseudonymisation cannot produce.

Tokens are random 64-bit integers standing for HMAC tokens; two records of one person share the
token of every field that was not corrupted.
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from splink import Linker

from linkage.config.linkage import LinkageConfig
from linkage.errors import ConfigError
from linkage.link import recalibrate
from linkage.link.backend import open_backend
from linkage.link.cluster import cluster
from linkage.link.derive import count_rule, derive, read_coverage, render_model, resolve_blocking
from linkage.link.model import settings
from linkage.link.run import describe_model, load_inputs
from linkage.link.train import check_em_coverage, fallback_lambda, train

NAMES = ["fn1", "fn1_canon", "fn1_phon", "fn1_pre3", "sn", "sn_phon", "sn_pre3"]
DATES = ["dob", "dob_swap", "dob_ym", "dob_yd", "dob_md"]
ADDRESS = ["addr_house", "addr_street", "addr_town"]
V1_ONLY_NULL = ["fn2", "sn_p1", "sn_p2", "pc", "pc_sector", "pc_district", "pnc", "case_ref"]


def _person(rng: random.Random) -> dict:
    token = lambda: rng.getrandbits(63)  # noqa: E731
    p = {c: token() for c in [*NAMES, *DATES, *ADDRESS, "nhs", "id_ssn"]}
    p["addr_town"] = rng.choice([11, 12, 13, 14])  # few towns: weak evidence
    p["sex"] = rng.choice("MF")
    return p


def _record(person: dict, rng: random.Random, columns: list[str], key: int) -> dict:
    rec = {"record_key": key, "source_row": key}
    for c in columns:
        rec[c] = person.get(c)
    for c in rng.sample([c for c in columns if c != "sex"], 2):  # two fields corrupted
        rec[c] = rng.getrandbits(63) if rng.random() < 0.5 else None
    return rec


def _write(folder: Path, source: str, records: list[dict], columns: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    types = {
        c: pa.bool_() if c.endswith("_weak") else pa.string() if c in ("sex", "role") else pa.int64()
        for c in columns
    }
    table = pa.table(
        {
            "record_key": pa.array([r["record_key"] for r in records], pa.int64()),
            "source_row": pa.array([r["source_row"] for r in records], pa.int64()),
            **{c: pa.array([r.get(c) for r in records], types[c]) for c in columns},
        }
    )
    path = folder / f"{source}.parquet"
    pq.write_table(table, path)
    # a manifest as the agency writes it: coverage of the token columns (sex and markers are counted)
    coverage = {
        c: len(records) - table[c].null_count for c in columns if c != "sex" and not c.endswith("_weak")
    }
    (folder / f"{source}.manifest.json").write_text(
        json.dumps({"agency": source, "token_coverage": coverage})
    )
    return path


@pytest.fixture(scope="module")
def v2_extracts(tmp_path_factory) -> tuple[Path, dict[str, Path], dict[int, int]]:
    """Two sources of one population: 'register' holds a generic SSN id and NHS numbers (some failing
    their check), 'survey' neither; both hold names, dates, addresses and sex. Returns the folder,
    the Parquet paths and the truth (record_key -> person)."""
    rng = random.Random(5)
    folder = tmp_path_factory.mktemp("v2") / "extracts"
    people = [_person(rng) for _ in range(300)]
    common = [*NAMES, *DATES, *ADDRESS, "sex", "dob_weak"]
    layouts = {"register": [*common, "nhs", "nhs_weak", "id_ssn"], "survey": [*common, *V1_ONLY_NULL]}
    truth, paths, key = {}, {}, 0
    for source, columns in layouts.items():
        records = []
        for i, person in enumerate(people):
            for _ in range(rng.choice([0, 1, 1, 2])):
                key += 1
                rec = _record(person, rng, [c for c in columns if c not in V1_ONLY_NULL], key)
                rec["dob_weak"] = False if rec.get("dob") is not None else None
                if "nhs" in columns:
                    rec["nhs_weak"] = (rng.random() < 0.1) if rec.get("nhs") is not None else None
                records.append(rec)
                truth[key] = i
        paths[source] = _write(folder, source, records, columns)
    return folder, paths, truth


def test_every_v2_family_present_gets_its_comparison_rules_and_conflicts(v2_extracts):
    _, paths, _ = v2_extracts
    model = derive(LinkageConfig(), read_coverage(paths))
    names = [c.name for c in model.config.comparisons]
    assert names == ["forename", "surname", "date_of_birth", "place", "nhs", "id_ssn", "sex"]
    notes = "\n".join(model.notes)
    for absent in ("pnc", "case_ref", "cro"):
        assert f"comparison '{absent}' left out" in notes
    # one comparison for where a person lives (no postcode here: the street decides 'missing')
    place = model.config.comparisons[3]
    assert [lvl.label for lvl in place.levels] == ["same house and street", "same street", "same town"]
    assert place.missing_when == ["addr_street"]
    forename = model.config.comparisons[0]
    assert "middle name used as first name" not in [lvl.label for lvl in forename.levels]  # no fn2 anywhere
    rules = [r.name for r in model.config.blocking_rules]
    assert rules[:2] == ["nhs", "id_ssn"] and "address_forename_start" in rules and "dob_town" in rules
    conflicts = {r.column: r.weak_marker for r in model.config.clustering.conflict_rules()}
    assert conflicts == {"nhs": "nhs_weak", "dob": "dob_weak"}  # a generic id is no conflict
    assert [r.name for r in model.config.training.em_rules] == ["em_dob", "em_names"]
    check_em_coverage(model.config)


def _level_of(comp, left: dict, right: dict) -> str:
    """The label of the first level of ``comp`` that holds for the pair (the SQL Splink is given)."""
    import duckdb

    from linkage.config.linkage import Condition
    from linkage.link.model import condition_sql

    columns = sorted({*left, *right})
    values = ", ".join(f"{left.get(c)}::BIGINT AS {c}_l, {right.get(c)}::BIGINT AS {c}_r" for c in columns)
    for level in comp.levels:
        cond = Condition(equal=level.equal, equal_any=level.equal_any)
        if duckdb.sql(f"SELECT coalesce({condition_sql(cond)}, false) FROM (SELECT {values})").fetchall()[0][
            0
        ]:
            return level.label
    return "else"


def test_one_name_crossed_over_counts_once_in_the_forename(v2_extracts):
    _, paths, _ = v2_extracts
    comps = {c.name: c for c in derive(LinkageConfig(), read_coverage(paths)).config.comparisons}
    labels = [lvl.label for lvl in comps["forename"].levels]
    crossed = "one name crossed over to the other field"
    assert (
        labels.index("forename and surname swapped") < labels.index(crossed) < labels.index("sounds the same")
    )
    # JASSIM RYBAK / RYBAK JASIM: the surname moved to the forename field, the forename mistyped
    a = {"fn1": 1, "sn": 2, "fn1_phon": 10, "sn_phon": 20, "fn1_pre3": 100, "sn_pre3": 200, "fn1_canon": 1}
    b = {"fn1": 2, "sn": 3, "fn1_phon": 20, "sn_phon": 30, "fn1_pre3": 200, "sn_pre3": 100, "fn1_canon": 2}
    for left, right in ((a, b), (b, a)):  # whichever record Splink puts on the left
        assert _level_of(comps["forename"], left, right) == crossed
        assert _level_of(comps["surname"], left, right) == "else"  # the evidence is counted once
    full_swap = {**b, "sn": 1}
    assert _level_of(comps["forename"], a, full_swap) == "forename and surname swapped"


def test_the_derived_date_of_birth_conflict_yields_to_a_direct_link(v2_extracts):
    _, paths, _ = v2_extracts
    rules = {
        r.column: r for r in derive(LinkageConfig(), read_coverage(paths)).config.clustering.conflict_rules()
    }
    assert rules["dob"].direct_link_overrides  # no check character: a difference may be an error
    assert not rules["nhs"].direct_link_overrides  # a valid checked id never yields


def test_link_only_needs_a_family_in_two_sources(v2_extracts):
    _, paths, _ = v2_extracts
    model = derive(LinkageConfig(link_type="link_only"), read_coverage(paths))
    names = [c.name for c in model.config.comparisons]
    assert "id_ssn" not in names and "nhs" not in names  # held by the register only: nothing to compare
    assert any(n.startswith("column id_ssn not used") for n in model.notes)


def test_config_sections_override_the_derived_model(v2_extracts):
    _, paths, _ = v2_extracts
    config = LinkageConfig.model_validate(
        {
            "comparisons": [
                {
                    "name": "town",
                    "missing_when": ["addr_town"],
                    "levels": [{"label": "t", "equal": ["addr_town"]}],
                },
                {"name": "postcode", "missing_when": ["pc"], "levels": [{"label": "p", "equal": ["pc"]}]},
            ],
            "omit": ["sex", "names"],
            "training": {"em_rules": [{"name": "only_names", "equal": ["fn1", "sn"]}]},
        }
    )
    model = derive(config, read_coverage(paths))
    town = next(c for c in model.config.comparisons if c.name == "town")
    assert town.levels[0].label == "t" and town.levels[0].term_frequency is None  # replaced by name
    assert "sex" not in [c.name for c in model.config.comparisons]
    assert "names" not in [r.name for r in model.config.blocking_rules]
    assert "comparison 'postcode' left out: pc absent or too sparse" in model.notes  # configured, yet absent
    with pytest.raises(ConfigError, match="forename, surname"):
        check_em_coverage(model.config)  # one pass on names cannot train the name comparisons


def test_nothing_to_link_on_is_a_clear_refusal(v2_extracts, tmp_path):
    _, paths, _ = v2_extracts
    empty = LinkageConfig(omit=["forename", "surname", "date_of_birth", "place", "nhs", "id_ssn", "sex"])
    with pytest.raises(ConfigError, match="no comparison has usable columns in these extracts: nothing"):
        derive(empty, read_coverage(paths))


def test_link_only_over_extracts_sharing_no_family_says_so():
    """Names in one extract, dates and addresses in the other: each could be deduplicated alone, but no
    family is held by both, so link_only has nothing to compare."""
    from linkage.link.derive import Coverage

    held = {c: {"a": 100} for c in ("fn1", "sn", "sn_phon")} | {c: {"b": 100} for c in ("dob", "pc")}
    coverage = Coverage({"a": 100, "b": 100}, held)
    assert derive(LinkageConfig(), coverage).config.comparisons  # link_and_dedupe: within each extract
    with pytest.raises(ConfigError, match="usable columns in these extracts held by two of them"):
        derive(LinkageConfig(link_type="link_only"), coverage)


def test_derived_v2_model_trains_scores_and_clusters(v2_extracts, tmp_path):
    """End to end over the v2 columns, without a Splink warning about levels never observed."""
    _, paths, truth = v2_extracts
    model = derive(LinkageConfig(), read_coverage(paths))
    with open_backend(model.config.backend, tmp_path / "work") as backend:
        index = backend.load_record_index(paths)
        tables = load_inputs(backend, paths, model.config)
        records = {a: pq.read_metadata(p).num_rows for a, p in paths.items()}
        resolved, counts = resolve_blocking(model, tables, sum(records.values()))
        assert counts and all(c.chosen for c in counts)  # a small study keeps every rule
        linker = Linker(tables, settings(resolved), log_level=None)
        train(linker, resolved.training, lambda _s: None, notes=model.notes, records=records, link_type="x")
        predictions = linker.inference.predict(threshold_match_weight=-5)
        inputs = {a: t.physical_name for a, t in zip(paths, tables, strict=True)}
        model_json = linker.misc.save_model_to_json()
        checked = recalibrate.fit(backend, predictions.physical_name, inputs, resolved, model_json)
        result = cluster(backend, predictions, index, inputs, resolved.clustering)
        rows = backend.sql(f"SELECT record_key, person_id FROM {result.table}")
        expected = result.expected
    assert not [n for n in model.notes if n.startswith("EM pass") or "lambda" in n]
    predicted: dict[int, set] = {}
    for key, person in rows:
        predicted.setdefault(person, set()).add(key)
    same = {frozenset(k for k in truth if truth[k] == p) for p in set(truth.values())}
    exact = sum(1 for group in predicted.values() if frozenset(group) in same)
    assert exact / len(same) >= 0.9
    # the model's own estimate of the people's pairwise precision/recall is close to the truth
    pairs = lambda groups: {frozenset((a, b)) for g in groups for a in g for b in g if a < b}  # noqa: E731
    joined, true = pairs(predicted.values()), pairs(same)
    precision, recall = len(joined & true) / len(joined), len(joined & true) / len(true)
    # (issue 13's targets: precision within 0.003, recall within 0.01)
    assert expected.expected_precision == pytest.approx(precision, abs=0.003)
    assert expected.expected_recall == pytest.approx(recall, abs=0.01)
    # too few pairs with a valid PNC on both records to check the model against: its own figures stand
    assert checked.identifier is None and "fewer than" in checked.note
    assert (expected.checked_precision, expected.checked_recall) == (
        expected.expected_precision,
        expected.expected_recall,
    )
    text = render_model(model, resolved, counts)
    assert "id_ssn" in text and "# Left out, and why:" in text


def test_train_skips_what_the_data_cannot_teach(v2_extracts, tmp_path):
    """A deterministic rule with no pair (Splink took log(0): 'math domain error') and an EM pass
    with no pair (EMTrainingException) become notes, not crashes."""
    _, paths, _ = v2_extracts
    config = LinkageConfig.model_validate(
        {
            "training": {
                "deterministic_rules": [
                    {"name": "same_nhs_and_town", "equal": ["nhs", "addr_house", "dob_swap"]}
                ],
                "em_rules": [
                    {"name": "em_dob", "equal": ["dob"]},
                    {"name": "em_names", "equal": ["fn1", "sn"]},
                    {"name": "em_never", "equal": ["nhs", "dob_swap", "addr_house", "sn_phon", "fn1_pre3"]},
                ],
            }
        }
    )
    model = derive(config, read_coverage(paths))
    notes: list[str] = []
    with open_backend(model.config.backend, tmp_path / "work") as backend:
        backend.load_record_index(paths)
        tables = load_inputs(backend, paths, model.config)
        # corrupt nothing: the rules above are simply too narrow to find a pair in this data
        backend.con.execute("UPDATE input_register SET dob_swap = NULL")
        linker = Linker(tables, settings(model.config), log_level=None)
        records = {a: pq.read_metadata(p).num_rows for a, p in paths.items()}
        train(
            linker,
            model.config.training,
            lambda _s: None,
            notes=notes,
            records=records,
            link_type="link_and_dedupe",
        )
        trained = linker.misc.save_model_to_json()
    lam = trained["probability_two_random_records_match"]
    assert len(trained["comparisons"]) == len(model.config.comparisons)  # the failed pass took none away
    assert "deterministic rule 'same_nhs_and_town' found no pair: not used for lambda" in notes
    assert any(n.startswith("no deterministic rule found a pair: lambda set") for n in notes)
    assert lam == pytest.approx(fallback_lambda(records, "link_and_dedupe"))
    assert "EM pass 'em_never' found no pair to learn from: skipped" in notes


def test_linkage_model_previews_extracts_without_keys(v2_extracts, tmp_path):
    folder, _, _ = v2_extracts
    text = describe_model(LinkageConfig(), Path("."), folder, None, tmp_path / "work")
    path = tmp_path / "model.yaml"
    path.write_text(text)
    from linkage.config import load_config

    reloaded = load_config(path, LinkageConfig)
    assert [c.name for c in reloaded.comparisons][:3] == ["forename", "surname", "date_of_birth"]
    assert reloaded.clustering.conflict_rules()[0].weak_marker == "nhs_weak"
    # the printed model, used as the config, derives itself again
    again = derive(reloaded, read_coverage({p.stem: p for p in folder.glob("*.parquet")}))
    assert [c.model_dump() for c in again.config.comparisons] == [
        c.model_dump() for c in reloaded.comparisons
    ]


def test_a_config_comparison_on_the_postcode_replaces_the_derived_place():
    """A v1 file's `postcode` comparison and the derived `place` would score the postcode twice."""
    from linkage.link.derive import Coverage

    held = {c: {"a": 100, "b": 100} for c in ["fn1", "sn", "dob", "pc", "pc_district", "addr_house"]}
    coverage = Coverage({"a": 100, "b": 100}, held)
    assert "place" in [c.name for c in derive(LinkageConfig(), coverage).config.comparisons]
    postcode = {"name": "postcode", "missing_when": ["pc"], "levels": [{"label": "same", "equal": ["pc"]}]}
    model = derive(LinkageConfig.model_validate({"comparisons": [postcode]}), coverage)
    assert [c.name for c in model.config.comparisons] == ["forename", "surname", "date_of_birth", "postcode"]
    assert "comparison 'place' left out: a config comparison is keyed on pc" in model.notes


@pytest.fixture(scope="module")
def common_name_extracts(tmp_path_factory) -> dict[str, Path]:
    """Two sources: 50 people with a rare name, once in each, and 60 different people who share one
    common name (John Smith), its sound-alike codes and birth month, each once, in either source."""
    rng = random.Random(11)
    columns = [*NAMES, *DATES, "sex"]
    common = {c: rng.getrandbits(63) for c in [*NAMES, "dob_ym"]}
    people = [_person(rng) for _ in range(50)] + [{**_person(rng), **common} for _ in range(60)]
    rows: dict[str, list[dict]] = {"a": [], "b": []}
    for i, person in enumerate(people):
        for source in ("a", "b") if i < 50 else (rng.choice("ab"),):
            key = len(rows["a"]) + len(rows["b"]) + 1
            rows[source].append({"record_key": key, "source_row": key, **{c: person[c] for c in columns}})
    folder = tmp_path_factory.mktemp("common") / "extracts"
    return {source: _write(folder, source, records, columns) for source, records in rows.items()}


def test_a_capped_value_generates_no_pairs(common_name_extracts, tmp_path):
    paths = common_name_extracts
    config = LinkageConfig.model_validate({"derive": {"max_block_size": 10}})
    model = derive(config, read_coverage(paths))
    names = next(r for r in model.config.blocking_rules if r.name == "names")
    assert names.max_block_size == 10
    with open_backend(model.config.backend, tmp_path / "work") as backend:
        tables = load_inputs(backend, paths, model.config)
        flagged = backend.sql("SELECT count(*) FILTER (NOT cap_names) FROM input_a")[0][0]
        flagged += backend.sql("SELECT count(*) FILTER (NOT cap_names) FROM input_b")[0][0]
        assert flagged == 60  # every John Smith, in both sources; nobody else
        probe = Linker(tables, settings(model.config), log_level=None)
        assert count_rule(probe, names, 1.0) == 50  # each rare person's two records; no John Smith pair
        uncapped = names.model_copy(update={"max_block_size": None})
        assert count_rule(probe, uncapped, 1.0) == 50 + 60 * 59 // 2
        # a count on a sample of records (large studies) rests on few pairs for a small rule: Splink's
        # warning about it would reach the analyst's terminal, and changes no choice
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            count_rule(probe, names, 0.3)
        assert not [w for w in caught if "sampled blocking analysis" in str(w.message)]


def test_the_budget_is_never_exceeded(common_name_extracts, tmp_path):
    """The John Smiths also share their sound-alike names and birth month, an uncapped rule: 1,770
    pairs, over a budget of 1,000. The rules chosen, counted together, stay within it."""
    paths = common_name_extracts
    config = LinkageConfig.model_validate({"derive": {"comparisons_per_record": 0.01, "min_budget": 1000}})
    model = derive(config, read_coverage(paths))
    assert model.budget == 1000
    with open_backend(model.config.backend, tmp_path / "work") as backend:
        tables = load_inputs(backend, paths, model.config)
        resolved, counts = resolve_blocking(model, tables, 170)
        left_out = {c.name for c in counts if not c.chosen}
        assert "name_sounds_birth_year_month" in left_out
        assert sum(c.comparisons for c in counts if c.chosen) <= model.budget
        linker = Linker(tables, settings(resolved), log_level=None)
        scored = linker.blocking_analysis.count_comparisons_from_blocking_rules(record_sample_proportion=1.0)[
            -1
        ]["cumulative_comparison_count"]
    assert 50 <= scored <= model.budget


def test_the_other_party_is_the_suspect_of_a_victim_and_the_first_victim_of_a_suspect(tmp_path):
    """A crime row names a suspect and two victims (victim 1 written after victim 2); another row
    names nobody. The loaded inputs carry each record's other party, as tokens of that party; an
    extract without victim mentions has no such comparison, with a note."""
    rng = random.Random(3)
    suspect, victim1, victim2, alone = (_person(rng) for _ in range(4))
    columns = ["fn1", "sn", "dob", "sex", "role", "mention_of", "victim_index"]

    def row(person: dict, key: int, role: str = "subject", of: int | None = None, index: int | None = None):
        return {
            "record_key": key, "source_row": key, **{c: person[c] for c in ("fn1", "sn", "dob", "sex")},
            "role": role, "mention_of": of, "victim_index": index,
        }  # fmt: skip

    records = [
        row(suspect, 1),
        row(victim2, 2, "victim", 1, 2),
        row(victim1, 3, "victim", 1, 1),
        row(alone, 4),
        row(alone, 5, "victim", 2, 1),  # malformed: names another mention as its row; still loaded once
    ]
    paths = {"police": _write(tmp_path / "extracts", "police", records, columns)}
    coverage = read_coverage(paths)
    assert coverage.held["party_dob"] == {"police": 4}  # the three mentions, and the suspect of row 1
    model = derive(LinkageConfig(), coverage)
    party = next(c for c in model.config.comparisons if c.name == "other_party")
    assert [lvl.label for lvl in party.levels] == [
        "same other party (surname and date of birth)",
        "same other party (forename and date of birth)",
    ]
    roles = next(c for c in model.config.comparisons if c.name == "record_roles")
    with open_backend(model.config.backend, tmp_path / "work") as backend:
        load_inputs(backend, paths, model.config)
        loaded = {
            key: (fn1, sn, dob)
            for key, fn1, sn, dob in backend.sql(
                "SELECT record_key, party_fn1, party_sn, party_dob FROM input_police ORDER BY record_key"
            )
        }
        kinds = {key: (role, victim) for key, role, victim in backend.sql(
            "SELECT record_key, role, victim_mention FROM input_police ORDER BY record_key")}  # fmt: skip
    tokens = lambda p: (p["fn1"], p["sn"], p["dob"])  # noqa: E731
    assert loaded == {
        1: tokens(victim1), 2: tokens(suspect), 3: tokens(suspect), 4: (None, None, None), 5: tokens(victim2)
    }  # fmt: skip
    # one prior per kind of pair: two victim mentions, two subjects, one of each
    victims = {key: ("victim", True) for key in (2, 3, 5)}
    assert kinds == {1: ("subject", None), 4: ("subject", None), **victims}

    def record(key: int) -> dict:  # _level_of compares numbers: the role as 1/2, the victim flag as 1/NULL
        role, victim = kinds[key]
        return {"role": 1 + (role == "victim"), "victim_mention": victim or "NULL"}

    assert _level_of(roles, record(2), record(3)) == "both victim mentions"
    assert _level_of(roles, record(1), record(4)) == "both subjects"
    assert _level_of(roles, record(1), record(2)) == "else"

    plain = {"police": _write(tmp_path / "plain", "police", records, ["fn1", "sn", "dob", "sex"])}
    model = derive(LinkageConfig(), read_coverage(plain))
    assert not {"other_party", "record_roles"} & {c.name for c in model.config.comparisons}
    assert "comparison 'other_party' left out: party_dob absent or too sparse" in model.notes


def test_an_id_of_the_one_extract_counts_lambda_only_when_it_is_all_the_records():
    """A generic id one source of several holds sees only that source's pairs, and would understate
    lambda; the id of the only extract (a deduplication) sees every pair and is used."""
    from linkage.link.derive import Coverage

    base = ["fn1", "sn", "dob", "pc", "pc_district", "addr_house"]
    one = Coverage({"a": 100}, {c: {"a": 100} for c in [*base, "id_ssn"]})
    rules = [r.name for r in derive(LinkageConfig(), one).config.training.deterministic_rules]
    assert "same_id_ssn" in rules
    held = {c: {"a": 100, "b": 100} for c in base} | {"id_ssn": {"a": 100}}
    two = derive(LinkageConfig(), Coverage({"a": 100, "b": 100}, held))
    assert "same_id_ssn" not in [r.name for r in two.config.training.deterministic_rules]
    assert "deterministic rule 'same_id_ssn' left out: id_ssn is held by one source only" in two.notes
