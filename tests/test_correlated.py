"""Evidence that comes together (link/correlated.py): the counts against a brute-force reference, the
correction, its refusals, and the comparison it adds to the model (scored as measured, reloaded as is).

Hand-made input tables on an in-memory DuckDB; token values are small integers standing for tokens.
"""

from __future__ import annotations

import itertools
import math
import random

import duckdb
import pyarrow as pa
import pytest
from splink import DuckDBAPI, Linker

from linkage.config.linkage import VICTIM_MENTION, LinkageConfig
from linkage.errors import ConfigError
from linkage.link.backend import Backend
from linkage.link.correlated import MIN_LABELLED, CorrelatedCheck, corrected, measure
from linkage.link.derive import Coverage, derive
from linkage.link.model import input_columns, settings

U = {"surname": 0.01, "date_of_birth": 0.001, "place": 1e-4}
ERROR = 0.02  # the PNC comparison's trained m of "different": one person, two valid ids
COLUMNS = {"surname": "sn", "date_of_birth": "dob", "place": "pc"}


def _model(error: float = ERROR) -> dict:
    levels = lambda u: [{"is_null_level": True}, {"u_probability": u}, {"u_probability": 1 - u}]  # noqa: E731
    comparisons = [{"output_column_name": n, "comparison_levels": levels(u)} for n, u in U.items()]
    pnc = [{"is_null_level": True}, {"m_probability": 1 - error, "u_probability": 1e-6},
           {"m_probability": error, "u_probability": 1 - 1e-6}]  # fmt: skip
    return {"comparisons": [*comparisons, {"output_column_name": "pnc", "comparison_levels": pnc}]}


# a comparison reading the victim-mention flag (as the derived record_roles does)
ROLES = {
    "name": "roles",
    "missing_when": [VICTIM_MENTION],
    "levels": [{"label": "v", "equal": [VICTIM_MENTION]}],
}


def _config(
    link_type: str = "link_and_dedupe", conflicts: list | None = None, victims: bool = False
) -> LinkageConfig:
    comparisons = [
        {"name": n, "missing_when": [c], "levels": [{"label": f"same {c}", "equal": [c]}]}
        for n, c in COLUMNS.items()
    ]
    comparisons.append(
        {"name": "pnc", "missing_when": ["pnc"], "levels": [{"label": "same", "equal": ["pnc"]}]}
    )
    comparisons += [ROLES] if victims else []
    return LinkageConfig.model_validate(
        {
            "link_type": link_type,
            "comparisons": comparisons,
            "blocking_rules": [{"name": "surname", "equal": ["sn"]}],
            "training": {
                "correlated": [{"name": "home", "comparisons": list(COLUMNS), "subjects_only": victims}]
            },
            "clustering": {
                "never_link_different": [{"column": "pnc", "weak_marker": "pnc_weak"}]
                if conflicts is None
                else conflicts
            },
        }
    )


def _backend(tables: dict[str, list[dict]]) -> Backend:
    con = duckdb.connect()
    for agency, rows in tables.items():
        data = {
            "record_key": pa.array([r["record_key"] for r in rows], pa.int64()),
            **{c: pa.array([r.get(c) for r in rows], pa.int64()) for c in ("sn", "dob", "pc", "pnc", "fn1")},
            "pnc_weak": pa.array([r.get("pnc_weak") for r in rows], pa.bool_()),
            VICTIM_MENTION: pa.array([r.get(VICTIM_MENTION) for r in rows], pa.bool_()),
        }
        con.register("rows", pa.table(data))
        con.execute(f"CREATE TABLE input_{agency} AS SELECT * FROM rows")
        con.unregister("rows")
    return Backend(DuckDBAPI(con), con)


def _population(
    rng: random.Random, *, people: int, twins: int, errors: int, agencies: list[str], victims: int = 0
) -> dict:
    """Records of one person share sn, dob and pc (some lack a PNC, a date, or hold a weak PNC);
    twins share them with a sibling of another PNC; 'errors' are people holding two valid PNCs;
    'victims' are people named as victims (no PNC), some also subjects, some twins."""
    tables: dict[str, list[dict]] = {a: [] for a in agencies}
    key = itertools.count(1)
    pnc = itertools.count(1000)

    def add(home: tuple[int, int, int], id_: int | None, n: int, **extra) -> None:
        for _ in range(n):
            sn, dob, pc = home
            row = {"record_key": next(key), "sn": sn, "dob": dob, "pc": pc, "pnc": id_, **extra}
            tables[rng.choice(agencies)].append(row)

    def home() -> tuple[int, int, int]:
        return rng.randrange(40), rng.randrange(1, 10**6), rng.randrange(1, 10**6)

    for _ in range(people):
        h = home()
        add(h, next(pnc), rng.choice([1, 2, 3]))
        add(h, None, rng.choice([0, 0, 1]))  # no PNC: agreeing, not labelled
        if rng.random() < 0.1:
            add(h, next(pnc), 1, pnc_weak=True)  # failed its check: not a label
        if rng.random() < 0.05:  # no date of birth: never agreeing, though surname and postcode do
            add((h[0], None, h[2]), next(pnc), 2)
    for _ in range(twins):
        h = home()
        add(h, next(pnc), 2)
        add(h, next(pnc), 2)
    for _ in range(errors):
        h = home()
        add(h, next(pnc), 1)
        add(h, next(pnc), 1)
    for _ in range(victims):
        h = home()
        add(h, None, rng.choice([1, 2]), **{VICTIM_MENTION: True})
        if rng.random() < 0.3:
            add(h, next(pnc), 1)  # the victim is a subject elsewhere
    return tables


def _brute_force(tables: dict[str, list[dict]], link_only: bool) -> tuple[int, int, int]:
    """(agreeing, labelled, different ids) by looking at every pair of subject records with a date of
    birth (a record without one never agrees; victim mentions are outside the measure)."""
    rows = [
        (agency, r)
        for agency, records in tables.items()
        for r in records
        if r["dob"] is not None and not r.get(VICTIM_MENTION)
    ]
    s = n_l = d = 0
    for (a, x), (b, y) in itertools.combinations(rows, 2):
        if (link_only and a == b) or any(x[c] != y[c] for c in ("sn", "dob", "pc")):
            continue
        s += 1
        if all(r["pnc"] is not None and not r.get("pnc_weak") for r in (x, y)):
            n_l += 1
            d += x["pnc"] != y["pnc"]
    return s, n_l, d


@pytest.mark.parametrize(
    ("link_type", "victims"), [("link_and_dedupe", 0), ("link_only", 0), ("link_and_dedupe", 300)]
)
def test_the_counts_and_the_correction_are_those_of_every_pair_looked_at(link_type, victims):
    agencies = ["police", "court"]
    tables = _population(
        random.Random(3), people=1500, twins=80, errors=30, agencies=agencies, victims=victims
    )
    (check,) = measure(_backend(tables), _config(link_type, victims=victims > 0), _model(), agencies)
    assert check.subjects_only == (victims > 0)
    s, n_l, d = _brute_force(tables, link_only=link_type == "link_only")
    assert (check.agreeing_pairs, check.labelled_pairs, check.different_ids) == (s, n_l, d)
    assert n_l >= MIN_LABELLED
    # P: the pairs of subject records holding every key (the u's are chances among such pairs)
    records = {
        a: sum(not r.get(VICTIM_MENTION) and r["dob"] is not None for r in rows) for a, rows in tables.items()
    }
    n = sum(records.values())
    possible = (
        n * (n - 1) / 2
        if link_type == "link_and_dedupe"
        else (n * n - sum(r * r for r in records.values())) / 2
    )
    chance = possible * math.prod(U.values())
    different = (d - ERROR * n_l) / (1 - ERROR) / n_l * s
    assert check.identifier == "pnc" and check.id_error_rate == ERROR
    assert check.expected_by_chance == pytest.approx(chance)
    assert check.different_people == pytest.approx(different, abs=0.1)
    assert check.weight == pytest.approx(math.log2(chance / different), abs=1e-3)
    assert check.weight < -5  # twins are far more common than the separate chances say


def test_no_correction_without_a_checked_id_enough_labels_or_an_excess_of_different_ids():
    rng = random.Random(4)
    tables = _population(rng, people=900, twins=60, errors=0, agencies=["police"])
    backend = _backend(tables)
    (none,) = measure(backend, _config(conflicts=[]), _model(), ["police"])
    assert none.weight is None and none.note == "no checked id of a known type: not measured"

    few = _population(rng, people=100, twins=60, errors=0, agencies=["police"])
    (check,) = measure(_backend(few), _config(), _model(), ["police"])
    assert check.labelled_pairs < MIN_LABELLED and check.weight is None

    # as many different ids as the id's own error rate explains (no twins): the agreement is not suspect
    honest = _population(rng, people=900, twins=0, errors=30, agencies=["police"])
    (check,) = measure(_backend(honest), _config(), _model(error=0.02), ["police"])
    assert check.different_ids == 30 and check.labelled_pairs >= MIN_LABELLED
    assert check.weight is None and "error rate explains" in check.note
    # an id that differs for many true matches is no check (and never divides by zero)
    for error in (0.2, 0.999):
        (check,) = measure(_backend(tables), _config(), _model(error=error), ["police"])
        assert check.weight is None and "no check" in check.note
    # a first level random sampling never met has no trained u (Splink leaves it out): not measured
    model = _model()
    del model["comparisons"][1]["comparison_levels"][1]["u_probability"]
    (check,) = measure(backend, _config(), model, ["police"])
    assert check.weight is None and "date_of_birth never met among random pairs" in check.note
    # agreement on all of them is no rarer among different people than chance says: never a boost
    half = [{"is_null_level": True}, {"u_probability": 0.5}, {}]
    common = {"comparisons": [{**c, "comparison_levels": half} for c in _model()["comparisons"][:3]]}
    common["comparisons"] += _model()["comparisons"][3:]
    (check,) = measure(backend, _config(), common, ["police"])
    assert check.different_people and check.expected_by_chance > check.different_people
    assert check.weight is None and "than chance predicts" in check.note


@pytest.mark.parametrize("victims", [False, True])
def test_the_added_comparison_lowers_exactly_the_pairs_agreeing_on_all_and_is_reloaded_as_is(victims):
    rng = random.Random(5)
    rows = []
    for key in range(1, 301):  # few surnames, dates and postcodes: every combination of agreement occurs
        home = {c: rng.randrange(3) for c in ("sn", "dob", "pc")}
        victim = True if victims and rng.random() < 0.3 else None  # a victim mention: true, else NULL
        rows.append(
            {"record_key": key, **home, "pnc": rng.choice([None, rng.randrange(5)]), VICTIM_MENTION: victim}
        )
    backend = _backend({"police": rows})
    config = _config(victims=victims)
    backend.con.execute("CREATE TABLE police AS SELECT 'police' AS source_dataset, * FROM input_police")
    table = backend.db_api.register("police", table_name="police")

    def scored(linker: Linker) -> dict[tuple[int, int], float]:
        pairs = linker.inference.predict().as_record_list()
        return {(p["record_key_l"], p["record_key_r"]): p["match_weight"] for p in pairs}

    base = Linker([table], settings(config), log_level=None)
    before = scored(base)
    check = CorrelatedCheck(
        name="home", comparisons=list(COLUMNS), note="", weight=-7.5, subjects_only=victims
    )
    corrected(base, config, [check])
    after = scored(base)
    by_key = {r["record_key"]: r for r in rows}
    agree = {k for k in before if all(by_key[k[0]][c] == by_key[k[1]][c] for c in ("sn", "dob", "pc"))}
    assert agree and set(before) - agree  # both kinds of pair are scored
    if victims:  # only pairs of two subjects are corrected
        with_victim = {k for k in agree if by_key[k[0]][VICTIM_MENTION] or by_key[k[1]][VICTIM_MENTION]}
        assert with_victim and agree - with_victim
        agree -= with_victim
    for pair, weight in before.items():
        assert after[pair] == pytest.approx(weight + (-7.5 if pair in agree else 0.0), abs=1e-9)
    # model.json keeps it with fixed m and u: a run with --model scores the same
    model = base.misc.save_model_to_json()
    added = model["comparisons"][-1]
    assert added["output_column_name"] == "correlated_home"
    assert all(
        lv.get("fix_m_probability") for lv in added["comparison_levels"] if not lv.get("is_null_level")
    )
    assert scored(Linker([table], model, log_level=None)) == pytest.approx(after)


def test_groups_that_would_count_twice_or_shadow_a_comparison_are_refused():
    with pytest.raises(ValueError, match="share surname: a pair agreeing on both would be corrected twice"):
        LinkageConfig.model_validate(
            {"training": {"correlated": [{"name": "a", "comparisons": ["surname", "place"]},
                                         {"name": "b", "comparisons": ["surname", "date_of_birth"]}]}}
        )  # fmt: skip
    held = {c: {"a": 100} for c in ["fn1", "sn", "dob", "pc", "pnc"]}
    shadow = {
        "name": "correlated_surname_dob_place",
        "missing_when": ["sn"],
        "levels": [{"label": "x", "equal": ["sn"]}],
    }
    with pytest.raises(ConfigError, match="already named correlated_surname_dob_place"):
        derive(LinkageConfig.model_validate({"comparisons": [shadow]}), Coverage({"a": 100}, held))


def test_the_derived_group_covers_subjects_only_when_the_extracts_hold_victim_mentions():
    held = {c: {"a": 100} for c in ["fn1", "sn", "dob", "pc", "pnc"]}
    (group,) = derive(LinkageConfig(), Coverage({"a": 100}, held)).config.training.correlated
    assert not group.subjects_only
    victims = {**held, VICTIM_MENTION: {"a": 30}}
    # even with the comparison that reads the roles left out, the roles are loaded for the correction
    model = derive(LinkageConfig(omit=["record_roles"]), Coverage({"a": 100}, victims))
    (group,) = model.config.training.correlated
    assert group.subjects_only and "record_roles" not in [c.name for c in model.config.comparisons]
    assert VICTIM_MENTION in input_columns(model.config)


def test_the_derived_group_needs_its_comparisons_and_countable_first_levels():
    held = {c: {"a": 100, "b": 100} for c in ["fn1", "sn", "dob", "pc", "pnc"]}
    coverage = Coverage({"a": 100, "b": 100}, held)
    derived = derive(LinkageConfig(), coverage)
    assert [g.comparisons for g in derived.config.training.correlated] == [
        ["surname", "date_of_birth", "place"]
    ]
    assert derive(LinkageConfig(omit=["surname_dob_place"]), coverage).config.training.correlated == []

    no_place = Coverage({"a": 100, "b": 100}, {c: v for c, v in held.items() if c != "pc"})
    model = derive(LinkageConfig(), no_place)
    assert model.config.training.correlated == []
    assert "correlated group 'surname_dob_place' left out: place not in the model" in model.notes

    typo = LinkageConfig.model_validate(
        {"training": {"correlated": [{"name": "g", "comparisons": ["surname", "dob"]}]}}
    )
    with pytest.raises(ConfigError, match="no comparison named dob"):
        derive(typo, coverage)
    # the analyst's own surname comparison, first level not countable: the derived group steps aside
    surname = {
        "name": "surname",
        "missing_when": ["sn"],
        "levels": [{"label": "x", "equal_any": ["sn", "sn_phon"]}],
    }
    model = derive(LinkageConfig.model_validate({"comparisons": [surname]}), coverage)
    assert model.config.training.correlated == []
    assert any(
        n.startswith("correlated group 'surname_dob_place' left out: the first level") for n in model.notes
    )
    any_of = {"name": "names", "missing_when": ["sn"], "levels": [{"label": "x", "equal_any": ["sn", "fn1"]}]}
    uncountable = LinkageConfig.model_validate(
        {
            "comparisons": [any_of],
            "training": {"correlated": [{"name": "g", "comparisons": ["names", "place"]}]},
        }
    )
    with pytest.raises(ConfigError, match="first level of comparison 'names' is not plain"):
        derive(uncountable, coverage)


# --- without a checked id: the forename as instrument -------------------------------------------------

M1, U1 = 0.9, 0.003  # the forename's trained m and u at its first level


def _relatives(rng: random.Random, *, people: int, relatives: int) -> tuple[dict, int]:
    """Records of one person share surname and postcode, and two of them their forename as often as
    M1 (a typo otherwise, some missing); households of relatives share surname and postcode, never a forename
    or a date of birth. Returns the tables and the true pairs of different people agreeing."""
    rows: list[dict] = []
    key, name = itertools.count(1), itertools.count(10)
    for _ in range(people):
        sn, pc, fn = rng.randrange(300), rng.randrange(1, 10**6), next(name)
        for _ in range(rng.choice([2, 3])):
            # two records agree when neither has a typo: M1 of the pairs
            first = None if rng.random() < 0.05 else fn if rng.random() < math.sqrt(M1) else next(name)
            rows.append({"record_key": next(key), "sn": sn, "pc": pc, "fn1": first})
    different = 0
    for _ in range(relatives):
        sn, pc, members = rng.randrange(300), rng.randrange(1, 10**6), rng.choice([2, 3, 4])
        for _ in range(members):
            fn = None if rng.random() < 0.05 else next(name)  # missing as often as anyone's
            rows.append({"record_key": next(key), "sn": sn, "pc": pc, "fn1": fn})
        different += members * (members - 1) // 2
    return {"police": rows}, different


def _relatives_config(instrument: str | None = "forename") -> LinkageConfig:
    comparisons = [
        {"name": n, "missing_when": [c], "levels": [{"label": f"same {c}", "equal": [c]}]}
        for n, c in (("surname", "sn"), ("place", "pc"), ("forename", "fn1"))
    ]
    group = {"name": "home", "comparisons": ["surname", "place"], "instrument": instrument}
    return LinkageConfig.model_validate(
        {
            "comparisons": comparisons,
            "blocking_rules": [{"name": "surname", "equal": ["sn"]}],
            "training": {"correlated": [group]},
            "clustering": {"never_link_different": []},
        }
    )


def _relatives_model(m1: float = M1) -> dict:
    levels = lambda m, u: [{"is_null_level": True}, {"m_probability": m, "u_probability": u}, {}]  # noqa: E731
    return {
        "comparisons": [
            {"output_column_name": "surname", "comparison_levels": levels(0.95, 0.01)},
            {"output_column_name": "place", "comparison_levels": levels(0.9, 1e-4)},
            {"output_column_name": "forename", "comparison_levels": levels(m1, U1)},
        ]
    }


def test_without_a_checked_id_the_forename_counts_the_relatives_agreeing_on_surname_and_place():
    tables, truth = _relatives(random.Random(5), people=2000, relatives=600)
    (check,) = measure(_backend(tables), _relatives_config(), _relatives_model(), ["police"])
    rows = tables["police"]
    pairs = [(x, y) for x, y in itertools.combinations(rows, 2) if x["sn"] == y["sn"] and x["pc"] == y["pc"]]
    held = [(x, y) for x, y in pairs if x["fn1"] is not None and y["fn1"] is not None]
    same = sum(x["fn1"] == y["fn1"] for x, y in held)
    assert (check.agreeing_pairs, check.labelled_pairs, check.different_ids) == (len(pairs), len(held), same)
    assert check.identifier == "forename" and check.instrument
    assert check.id_error_rate == M1 and check.instrument_u == U1
    different = (M1 * len(held) - same) / (M1 - U1) * len(pairs) / len(held)
    assert check.different_people == pytest.approx(different, abs=0.1)
    # the estimate is the truth within its sampling error (forename typos at 1 - M1 per record)
    assert abs(different - truth) < 3 * math.sqrt(len(held) * M1 * (1 - M1)) / (M1 - U1)
    assert check.weight == pytest.approx(math.log2(check.expected_by_chance / different), abs=1e-3)
    assert check.weight < -5 and "measured with forename" in check.note


def test_the_instrument_finds_no_relatives_where_there_are_none_and_needs_a_trained_m():
    tables, _ = _relatives(random.Random(6), people=2000, relatives=0)
    backend = _backend(tables)
    (check,) = measure(backend, _relatives_config(), _relatives_model(), ["police"])
    assert check.weight is None and "as often as matches alone explain" in check.note
    (check,) = measure(backend, _relatives_config(), _relatives_model(m1=0.002), ["police"])
    assert check.weight is None and "no trained m above its u" in check.note
    (check,) = measure(backend, _relatives_config(instrument=None), _relatives_model(), ["police"])
    assert check.weight is None and check.note == "no checked id of a known type: not measured"


def test_the_derived_group_is_the_twins_with_a_checked_id_and_the_relatives_without():
    base = {c: {"a": 100, "b": 100} for c in ["fn1", "sn", "dob", "pc"]}
    coverage = lambda held: Coverage({"a": 100, "b": 100}, held)  # noqa: E731
    (twins,) = derive(LinkageConfig(), coverage({**base, "pnc": {"a": 100}})).config.training.correlated
    assert (twins.name, twins.comparisons, twins.instrument) == (
        "surname_dob_place", ["surname", "date_of_birth", "place"], "forename",
    )  # fmt: skip
    (home,) = derive(LinkageConfig(), coverage(base)).config.training.correlated
    assert (home.name, home.comparisons, home.instrument) == (
        "surname_place",
        ["surname", "place"],
        "forename",
    )
    assert derive(LinkageConfig(omit=["surname_place"]), coverage(base)).config.training.correlated == []
    # the forename left out: the group stays, without an instrument (a note says so)
    model = derive(LinkageConfig(omit=["forename"]), coverage(base))
    (home,) = model.config.training.correlated
    assert home.instrument is None
    assert "correlated group 'surname_place': no instrument ('forename' not in the model)" in model.notes
    inside = {"name": "g", "comparisons": ["surname", "place"], "instrument": "surname"}
    with pytest.raises(ValueError, match="the instrument 'surname' is one of the group's own comparisons"):
        LinkageConfig.model_validate({"training": {"correlated": [inside]}})
    typo = {"name": "g", "comparisons": ["surname", "place"], "instrument": "forname"}
    with pytest.raises(ConfigError, match="no comparison named forname"):
        derive(LinkageConfig.model_validate({"training": {"correlated": [typo]}}), coverage(base))
