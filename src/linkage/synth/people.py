"""Synthetic persons: names, sex, date of birth, ethnicity, address history, PNC id, hard cases.

Persons are generated a chunk at a time with numpy (one Generator per chunk, derived from the seed
and the chunk number), so memory stays bounded and the output does not depend on timing. Name,
street and postcode pools are built once from faker's en_GB data plus the pools in `reference`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from faker import Faker
from faker.providers.address.en_GB import Provider as AddressProvider
from faker.providers.person.en_GB import Provider as PersonProvider

from linkage.synth import reference as ref
from linkage.synth.identifiers import INWARD_LETTERS, day_number
from linkage.synth.params import SynthParams

FEMALE, MALE = 1, 0
MAX_ADDRESSES = 4
NO_MOVE = np.iinfo(np.int64).max
HOSTEL_GROUP_BASE = 10**12  # hard_case_group of hostel residents: base + hostel number
# Hard-case tags as written to truth/persons.parquet and records.parquet.
HARD_CASE_TAGS = ("twin", "jr_sr", "sibling", "household", "cohort", "hostel")
ORIGINS = ("anglo", "south_asian", "black", "european")
# Name origin by ethnic group: P(origin) for forenames and surnames (an illustrative mix).
ORIGIN_BY_GROUP: dict[str, tuple[float, float, float, float]] = {
    "White": (0.90, 0.0, 0.0, 0.10),
    "Black": (0.45, 0.0, 0.55, 0.0),
    "Asian": (0.05, 0.95, 0.0, 0.0),
    "Mixed": (0.75, 0.05, 0.15, 0.05),
    "Other": (0.40, 0.15, 0.10, 0.35),
}
# Ethnicity of people recorded as suspects (approximate E&W arrest shares; NS = not stated).
GROUP_SHARES: dict[str, float] = {
    "White": 0.74,
    "Black": 0.08,
    "Asian": 0.08,
    "Mixed": 0.04,
    "Other": 0.02,
    "NS": 0.04,
}
CODE_SHARES: dict[str, tuple[float, ...]] = {
    "White": (0.85, 0.02, 0.01, 0.01, 0.11),
    "Black": (0.40, 0.45, 0.15),
    "Asian": (0.35, 0.40, 0.12, 0.03, 0.10),
    "Mixed": (0.40, 0.15, 0.20, 0.25),
    "Other": (0.30, 0.30, 0.40),
}


def _zipf(n: int, s: float = 1.0, q: float = 8.0) -> np.ndarray:
    w = 1.0 / (np.arange(n) + q) ** s
    return w / w.sum()


@dataclass(frozen=True)
class NamePool:
    """Names and their sampling weights for one origin and one sex (or surnames)."""

    names: np.ndarray
    weights: np.ndarray

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.names[rng.choice(len(self.names), size=n, p=self.weights)]


@dataclass(frozen=True)
class Pools:
    """All sampling pools; built once per process (deterministic, no randomness in the build)."""

    forenames: dict[tuple[str, int], NamePool]
    surnames: dict[str, NamePool]
    outward: np.ndarray
    streets: np.ndarray
    towns: np.ndarray


def _pool(names: tuple[str, ...] | list[str], weights: np.ndarray | None = None) -> NamePool:
    arr = np.array(list(names), dtype=object)
    w = _zipf(len(arr)) if weights is None else weights / weights.sum()
    return NamePool(arr, w)


@functools.cache
def pools() -> Pools:
    """Name, street and postcode pools (en_GB faker data plus the extra pools in `reference`)."""
    surn = PersonProvider.last_names
    forenames = {
        ("anglo", MALE): _pool(PersonProvider.first_names_male),
        ("anglo", FEMALE): _pool(PersonProvider.first_names_female),
        ("south_asian", MALE): _pool(ref.SOUTH_ASIAN_MALE),
        ("south_asian", FEMALE): _pool(ref.SOUTH_ASIAN_FEMALE),
        ("black", MALE): _pool(ref.BLACK_MALE),
        ("black", FEMALE): _pool(ref.BLACK_FEMALE),
        ("european", MALE): _pool(ref.EUROPEAN_MALE),
        ("european", FEMALE): _pool(ref.EUROPEAN_FEMALE),
    }
    surnames = {
        "anglo": _pool(list(surn), np.array(list(surn.values()), dtype=float)),
        "south_asian": _pool(ref.SOUTH_ASIAN_SURNAMES),
        "black": _pool(ref.BLACK_SURNAMES),
        "european": _pool(ref.EUROPEAN_SURNAMES),
    }
    # Outward codes: real postcode areas (Northern Ireland excluded) with districts 1..20.
    areas = [a for a in AddressProvider.POSTAL_ZONES if a != "BT"]
    outward = np.array([f"{a}{d}" for a in areas for d in range(1, 21)], dtype=object)
    fake = Faker("en_GB")
    fake.seed_instance(20240331)  # fixed: the pools are part of the generator, not of a run
    streets = np.array(sorted({fake.street_name() for _ in range(3000)}), dtype=object)
    towns = np.array(sorted({fake.city() for _ in range(600)}), dtype=object)
    return Pools(forenames, surnames, outward, streets, towns)


@dataclass
class Persons:
    """One chunk of persons as parallel numpy arrays (index i = one person)."""

    pid: np.ndarray
    sex: np.ndarray  # 0 male, 1 female
    dob: np.ndarray  # day numbers
    ethnicity: np.ndarray  # 16+1 code, e.g. "W1", "NS"
    forename: np.ndarray
    middle: np.ndarray  # "" or one or two middle names ("John Paul")
    surname: np.ndarray
    alias_forename: np.ndarray  # "" if none
    alias_surname: np.ndarray
    married_surname: np.ndarray  # "" if no change of surname
    marriage_day: np.ndarray
    pnc_year: np.ndarray  # year of first arrest (4 digits)
    pnc_serial: np.ndarray  # unique per person
    postcodes: np.ndarray  # [n, MAX_ADDRESSES]
    streets: np.ndarray  # [n, MAX_ADDRESSES] "12 High Street"
    move_days: np.ndarray  # [n, MAX_ADDRESSES - 1], NO_MOVE if none
    force: np.ndarray  # home force area index
    da_propensity: np.ndarray
    hard_case: np.ndarray  # "" or one of HARD_CASE_TAGS
    hard_case_group: np.ndarray  # -1 or the id shared by the people of one hard case
    dob_blank_agency: np.ndarray  # -1, or index of the agency that never records this DOB

    def __len__(self) -> int:
        return len(self.pid)

    def address_index(self, rows: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Which address (0..3) person ``rows[k]`` lived at on day ``days[k]``."""
        return (self.move_days[rows] <= days[:, None]).sum(axis=1)


def _inward(rng: np.random.Generator, n: int) -> np.ndarray:
    digits = rng.integers(0, 10, n)
    letters = np.array(list(INWARD_LETTERS), dtype=object)
    a = letters[rng.integers(0, len(letters), n)]
    b = letters[rng.integers(0, len(letters), n)]
    return np.array([f"{d}{x}{y}" for d, x, y in zip(digits, a, b, strict=True)], dtype=object)


def random_postcodes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Valid-format UK postcodes ('OUTWARD INWARD') with real postcode areas."""
    outward = pools().outward[rng.integers(0, len(pools().outward), n)]
    return np.array([f"{o} {i}" for o, i in zip(outward, _inward(rng, n), strict=True)], dtype=object)


def moved_postcodes(rng: np.random.Generator, current: np.ndarray) -> np.ndarray:
    """Postcodes after a move: 60 % stay in the same district (same outward code), 40 % anywhere."""
    n = len(current)
    local = rng.random(n) < 0.6
    anywhere = random_postcodes(rng, n)
    inward = _inward(rng, n)
    near = np.array([f"{c.split(' ')[0]} {i}" for c, i in zip(current, inward, strict=True)], dtype=object)
    return np.where(local, near, anywhere)


def _street_lines(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape))
    nums = rng.integers(1, 300, n)
    st = pools().streets[rng.integers(0, len(pools().streets), n)]
    return np.array([f"{a} {s}" for a, s in zip(nums, st, strict=True)], dtype=object).reshape(shape)


def _forenames(rng: np.random.Generator, origin: np.ndarray, sex: np.ndarray) -> np.ndarray:
    out = np.empty(len(origin), dtype=object)
    for o in ORIGINS:
        for s in (MALE, FEMALE):
            m = (origin == o) & (sex == s)
            if m.any():
                out[m] = pools().forenames[(o, s)].sample(rng, int(m.sum()))
    return out


def _surnames(rng: np.random.Generator, origin: np.ndarray) -> np.ndarray:
    out = np.empty(len(origin), dtype=object)
    for o in ORIGINS:
        m = origin == o
        if m.any():
            out[m] = pools().surnames[o].sample(rng, int(m.sum()))
    return out


def _origins(rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
    out = np.empty(len(group), dtype=object)
    for g, probs in ORIGIN_BY_GROUP.items():
        m = group == g
        if m.any():
            out[m] = np.array(ORIGINS, dtype=object)[rng.choice(4, size=int(m.sum()), p=probs)]
    return out


def _pnc_serial(pid: np.ndarray) -> np.ndarray:
    """A serial unique to each person id (an affine permutation of 1..9,999,999)."""
    return (pid.astype(np.int64) * 7_654_321 + 1_234_567) % 9_999_999 + 1


def make_persons(
    rng: np.random.Generator,
    first_pid: int,
    n: int,
    params: SynthParams,
    hostel_postcodes: np.ndarray,
    female_share: float = 0.18,
) -> Persons:
    """Generate persons ``first_pid .. first_pid + n - 1`` (hard cases included if enabled).

    ``female_share``: suspects are mostly men (~82 %, the default); victims are drawn with their own."""
    pid = np.arange(first_pid, first_pid + n, dtype=np.int64)
    start, end = day_number(params.window_start), day_number(params.extract_date)
    # Ages at the window start 14+, peak in the late twenties.
    sex = (rng.random(n) < female_share).astype(np.int8)
    age_days = ((14 + rng.gamma(2.2, 7.5, n)).clip(14, 80) * 365.25).astype(np.int64)
    dob = start - age_days - rng.integers(0, 365, n)
    groups = np.array(list(GROUP_SHARES), dtype=object)
    group = groups[rng.choice(len(groups), size=n, p=np.array(list(GROUP_SHARES.values())))]
    ethnicity = np.full(n, "NS", dtype=object)
    name_group = group.copy()
    ns = group == "NS"
    name_group[ns] = np.array(list(ORIGIN_BY_GROUP), dtype=object)[
        rng.choice(5, size=int(ns.sum()), p=[0.8, 0.07, 0.07, 0.04, 0.02])
    ]
    for g, shares in CODE_SHARES.items():
        m = group == g
        if m.any():
            codes = np.array(ref.ETHNICITY_CODES[g], dtype=object)
            ethnicity[m] = codes[rng.choice(len(codes), size=int(m.sum()), p=shares)]
    f_origin = _origins(rng, name_group)
    s_origin = np.where(rng.random(n) < 0.85, f_origin, _origins(rng, name_group))
    forename = _forenames(rng, f_origin, sex)
    surname = _surnames(rng, s_origin)
    # Middle names: ~55 % have one, ~6 % two.
    k_mid = rng.choice(3, size=n, p=[0.45, 0.49, 0.06])
    m1, m2 = _forenames(rng, f_origin, sex), _forenames(rng, f_origin, sex)
    middle = np.where(k_mid == 0, "", np.where(k_mid == 1, m1, m1 + " " + m2)).astype(object)
    middle[(k_mid > 0) & (m1 == forename)] = ""
    # Double-barrelled surnames (~3 %).
    dbl = rng.random(n) < 0.03
    surname[dbl] = surname[dbl] + "-" + _surnames(rng, s_origin[dbl])
    # Aliases (~4 %): another forename and/or surname used with the police.
    has_alias = rng.random(n) < 0.04
    alias_f = np.where(has_alias & (rng.random(n) < 0.7), _forenames(rng, f_origin, sex), "").astype(object)
    alias_s = np.where(has_alias & (alias_f == ""), _surnames(rng, s_origin), "").astype(object)
    # Changed surname on marriage (~6 % of women) at a day inside the window.
    married = (sex == FEMALE) & (rng.random(n) < 0.06)
    married_surname = np.where(married, _surnames(rng, s_origin), "").astype(object)
    marriage_day = np.where(married, rng.integers(start, end, n), NO_MOVE)
    # Address history: 1-4 addresses, moves at random days inside the window.
    n_moves = np.minimum(rng.poisson(0.7, n), MAX_ADDRESSES - 1)
    postcodes = np.empty((n, MAX_ADDRESSES), dtype=object)
    postcodes[:, 0] = random_postcodes(rng, n)
    for k in range(1, MAX_ADDRESSES):
        postcodes[:, k] = moved_postcodes(rng, postcodes[:, k - 1])
    moves = np.sort(rng.integers(start, end, (n, MAX_ADDRESSES - 1)), axis=1)
    moves[np.arange(MAX_ADDRESSES - 1)[None, :] >= n_moves[:, None]] = NO_MOVE
    force_w = np.array([f.volume for f in ref.FORCE_AREAS], dtype=float)
    force = rng.choice(len(force_w), size=n, p=force_w / force_w.sum()).astype(np.int16)
    da = params.da_share
    # Person-level DA propensity, so that DA offending clusters on some people.
    propensity = rng.beta(da * 1.5, (1 - da) * 1.5, n) if 0.0 < da < 1.0 else np.full(n, da)
    persons = Persons(
        pid=pid,
        sex=sex,
        dob=dob,
        ethnicity=ethnicity,
        forename=forename,
        middle=middle,
        surname=surname,
        alias_forename=alias_f,
        alias_surname=alias_s,
        married_surname=married_surname,
        marriage_day=marriage_day,
        pnc_year=np.zeros(n, dtype=np.int64),
        pnc_serial=_pnc_serial(pid),
        postcodes=postcodes,
        streets=_street_lines(rng, (n, MAX_ADDRESSES)),
        move_days=moves,
        force=force,
        da_propensity=propensity,
        hard_case=np.full(n, "", dtype=object),
        hard_case_group=np.full(n, -1, dtype=np.int64),
        dob_blank_agency=np.full(n, -1, dtype=np.int8),
    )
    if params.hard_cases:
        add_hard_cases(rng, persons, params, hostel_postcodes)
    # PNC: year of first arrest between age 15 and the end of the window (first arrests skew early).
    dob_year = (persons.dob / 365.25 + 1970).astype(np.int64)
    lo = np.maximum(dob_year + 15, 1990)
    hi = np.maximum(lo + 1, params.extract_date.year)
    persons.pnc_year = lo + (rng.random(n) ** 1.5 * (hi - lo)).astype(np.int64)
    return persons


def _share_home(p: Persons, a: np.ndarray, b: np.ndarray) -> None:
    """Person b lives with person a: same address history, force and ethnicity."""
    p.postcodes[b] = p.postcodes[a]
    p.streets[b] = p.streets[a]
    p.move_days[b] = p.move_days[a]
    p.force[b] = p.force[a]
    p.ethnicity[b] = p.ethnicity[a]


def _tag(p: Persons, members: list[np.ndarray], tag: str) -> None:
    for m in members:
        p.hard_case[m] = tag
        p.hard_case_group[m] = p.pid[members[0]]


def add_hard_cases(
    rng: np.random.Generator, p: Persons, params: SynthParams, hostel_postcodes: np.ndarray
) -> None:
    """Turn some persons into the hard cases of issue 8, in place (disjoint sets of people)."""
    n = len(p)
    rates = params.hard_case_rates
    order = rng.permutation(n)
    cursor = 0

    def take(k: int) -> np.ndarray:
        nonlocal cursor
        out = order[cursor : cursor + k]
        cursor += k
        return out

    def pairs(rate: float) -> tuple[np.ndarray, np.ndarray]:
        k = int(rng.binomial(n, rate) // 2)
        k = min(k, (n - cursor) // 2)
        idx = take(2 * k)
        return idx[:k], idx[k:]

    a, b = pairs(rates.twin)  # same surname, DOB and address; different forenames
    _share_home(p, a, b)
    p.surname[b], p.dob[b] = p.surname[a], p.dob[a]
    same_sex = rng.random(len(a)) < 0.65
    p.sex[b] = np.where(same_sex, p.sex[a], 1 - p.sex[a])
    p.forename[b] = _forenames(rng, np.full(len(b), "anglo", dtype=object), p.sex[b])
    _tag(p, [a, b], "twin")

    a, b = pairs(rates.jr_sr)  # father a, son b: same full name and address
    p.sex[a] = p.sex[b] = MALE
    p.forename[a] = _forenames(rng, np.full(len(a), "anglo", dtype=object), p.sex[a])
    p.forename[b], p.middle[b], p.surname[b] = p.forename[a], p.middle[a], p.surname[a]
    p.dob[a] = (
        p.dob[b] - (rng.integers(20, 36, len(a)) * 365.25).astype(np.int64) - rng.integers(0, 365, len(a))
    )
    p.married_surname[a] = p.married_surname[b] = ""
    _share_home(p, b, a)
    _tag(p, [a, b], "jr_sr")

    a, b = pairs(rates.sibling)  # older sibling b
    _share_home(p, a, b)
    p.surname[b] = p.surname[a]
    p.dob[b] = (
        p.dob[a] - (rng.integers(1, 9, len(a)) * 365.25).astype(np.int64) - rng.integers(0, 200, len(a))
    )
    _tag(p, [a, b], "sibling")

    a, b = pairs(rates.household)  # couple or parent and adult child; one agency lacks DOB
    _share_home(p, a, b)
    p.surname[b] = p.surname[a]
    p.sex[b] = 1 - p.sex[a]
    p.forename[b] = _forenames(rng, np.full(len(b), "anglo", dtype=object), p.sex[b])
    p.middle[b] = ""
    p.dob[b] = p.dob[a] - rng.integers(0, 5 * 365, len(a))
    agency = rng.integers(0, 4, len(a)).astype(np.int8)
    p.dob_blank_agency[a] = agency
    p.dob_blank_agency[b] = agency
    _tag(p, [a, b], "household")

    k = int(rng.binomial(n, rates.cohort) // 4)  # cohorts of 3-5: common name, same birth year
    top_m = pools().forenames[("anglo", MALE)].names[:8]
    top_s = pools().surnames["anglo"].names[np.argsort(-pools().surnames["anglo"].weights)[:8]]
    for _ in range(k):
        size = int(rng.integers(3, 6))
        if n - cursor < size:
            break
        idx = take(size)
        p.sex[idx] = MALE
        p.forename[idx] = top_m[rng.integers(0, len(top_m))]
        p.surname[idx] = top_s[rng.integers(0, len(top_s))]
        year_start = p.dob[idx[0]] - (p.dob[idx[0]] % 365)
        p.dob[idx] = year_start + rng.integers(0, 365, size)
        p.married_surname[idx] = ""
        _tag(p, [idx[:1], idx[1:]], "cohort")

    h = take(min(int(rng.binomial(n, rates.hostel)), n - cursor))  # lived in a hostel for a while
    n_moves = (p.move_days[h] != NO_MOVE).sum(axis=1)
    slot = rng.integers(0, n_moves + 1)  # an address slot the person actually lives at
    hostel = rng.integers(0, len(hostel_postcodes), len(h))
    p.postcodes[h, slot] = hostel_postcodes[hostel]
    p.streets[h, slot] = np.array(ref.HOSTEL_STREETS, dtype=object)[hostel % len(ref.HOSTEL_STREETS)]
    p.hard_case[h] = "hostel"
    p.hard_case_group[h] = HOSTEL_GROUP_BASE + hostel
