"""Identifier noise: how one person's details come out of five agencies' systems.

Each record's identity is rendered from the true person and then corrupted at the rates in
`params.NoiseRates` (typos, OCR errors, nicknames, spelling variants, swaps, aliases, DOB slips,
postcode errors and moves, missing and wrong PNC ids). Every corruption applied is recorded per
record, with how many records were eligible for it, so tests and error analysis can use them.
Nicknames come from the `nicknames` package, never from the engine's own table.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from dataclasses import dataclass

import numpy as np
from nicknames import NickNamer

from linkage.synth import reference as ref
from linkage.synth.identifiers import MISSING_DAY, day_number, from_ymd, ymd
from linkage.synth.params import COMPLETENESS, SynthParams
from linkage.synth.people import Persons, pools

AGENCIES = ("police", "prosecution", "court", "prison", "probation")
NOISE_KINDS = (
    "alias",
    "agency_variant",
    "nickname",
    "spelling_variant",
    "middle_as_first",
    "middle_dropped",
    "double_barrel_part",
    "forename_typo",
    "surname_typo",
    "ocr",
    "name_swap",
    "dob_placeholder",
    "dob_day_month_swap",
    "dob_year_off",
    "dob_day_off",
    "sex_missing",
    "sex_wrong",
    "postcode_stale",
    "postcode_typo",
    "postcode_nfa",
    "pnc_wrong",
)
# Other tags in truth: facts of the record, and case-reference noise added by the layouts.
FACT_KINDS = (
    "urn_format",
    "urn_typo",
    "married_name",
    "maiden_name",
    "dob_missing",
    "dob_household_blank",
    "postcode_missing",
    "pnc_missing",
)
OCR_PAIRS = (
    ("rn", "m"),
    ("m", "rn"),
    ("cl", "d"),
    ("d", "cl"),
    ("li", "h"),
    ("h", "li"),
    ("vv", "w"),
    ("w", "vv"),
    ("l", "I"),
    ("nn", "m"),
    ("ii", "u"),
)
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@functools.cache
def _nicknames() -> dict[str, tuple[str, ...]]:
    """Forename -> nicknames and short forms (title case) for every forename in the pools."""
    nn = NickNamer()
    out: dict[str, tuple[str, ...]] = {}
    names = {str(n) for pool in pools().forenames.values() for n in pool.names}
    for name in sorted(names):
        cands = sorted(c.title() for c in nn.nicknames_of(name.lower()) if c.isalpha() and len(c) >= 2)
        # Prefer the familiar short forms (same initial: Robert -> Rob, Bob is kept too).
        same = [c for c in cands if c[0] == name[0]]
        if cands:
            out[name] = tuple(same + [c for c in cands if c not in same])
    return out


@functools.cache
def _variants() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for group in ref.SPELLING_VARIANTS:
        for name in group:
            out[name] = tuple(v for v in group if v != name)
    return out


def typo(name: str, h: int) -> str:
    """A one-character typing error chosen by the integer ``h`` (substitute, delete, insert, transpose)."""
    if len(name) < 2:
        return name + LETTERS[h % 26]
    op, pos, letter = h % 4, (h // 4) % len(name), LETTERS[(h // 16) % 26]
    pos = max(1, pos) if len(name) > 2 else pos  # keep the initial most of the time, as real typos do
    upper = name[pos].isupper()
    letter = letter.upper() if upper else letter
    if op == 0 and name[pos].isalpha() and name[pos].lower() != letter.lower():
        return name[:pos] + letter + name[pos + 1 :]
    if op == 1 and len(name) > 3:
        return name[:pos] + name[pos + 1 :]
    if op == 2:
        return name[:pos] + letter + name[pos:]
    if pos + 1 < len(name) and name[pos] != name[pos + 1]:
        return name[:pos] + name[pos + 1] + name[pos] + name[pos + 2 :]
    return name[:pos] + letter + name[pos:]


def ocr(name: str, h: int) -> str | None:
    """An OCR-like confusion (rn<->m, cl<->d, l->I ...), or None if the name has none of the patterns."""
    options = [(i, a, b) for a, b in OCR_PAIRS for i in range(1, len(name)) if name.startswith(a, i)]
    if not options:
        return None
    i, a, b = options[h % len(options)]
    return name[:i] + b + name[i + len(a) :]


def postcode_typo(pc: str, h: int) -> str:
    """Change one character of a postcode so that it keeps a valid format."""
    outward, inward = pc.split(" ")
    if h % 2:
        return f"{outward} {(int(inward[0]) + 1 + h // 2 % 9) % 10}{inward[1:]}"
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    k = 1 + (h // 2) % 2
    new = letters[(letters.index(inward[k]) + 1 + h // 4 % 19) % len(letters)]
    return f"{outward} {inward[:k]}{new}{inward[k + 1 :]}"


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64: a fast, stable hash of uint64 values (persistent per-person choices)."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@dataclass
class Identities:
    """The identifiers of a batch of records as one agency holds them."""

    forename: np.ndarray
    middle: np.ndarray
    surname: np.ndarray
    dob: np.ndarray  # day numbers or MISSING_DAY
    sex: np.ndarray  # 0 male, 1 female, -1 missing
    postcode: np.ndarray  # "" missing, or "NO FIXED ABODE"/"NFA"
    street: np.ndarray
    pnc_year: np.ndarray  # 0 = no PNC id on the record
    pnc_serial: np.ndarray
    noise: np.ndarray  # comma-separated tags of what was applied ("" = clean)


class NoiseCounter:
    """Eligible and applied counts per noise kind (for the summary and the rate tests)."""

    def __init__(self) -> None:
        self.eligible: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()

    def add(self, kind: str, eligible: int, applied: int) -> None:
        self.eligible[kind] += eligible
        self.applied[kind] += applied

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {k: {"eligible": self.eligible[k], "applied": self.applied[k]} for k in sorted(self.eligible)}


def render(
    rng: np.random.Generator,
    persons: Persons,
    pidx: np.ndarray,
    days: np.ndarray,
    agency: str,
    has_pnc: np.ndarray,
    params: SynthParams,
    counter: NoiseCounter,
) -> Identities:
    """Identifiers of records (person ``pidx[k]`` seen on day ``days[k]``) as ``agency`` records them."""
    rates, comp = params.noise, COMPLETENESS[agency]
    a_ix = AGENCIES.index(agency)
    n = len(pidx)
    tags: dict[str, np.ndarray] = {}

    def draw(kind: str, eligible: np.ndarray, rate: float) -> np.ndarray:
        hit = eligible & (rng.random(n) < rate)
        counter.add(kind, int(eligible.sum()), int(hit.sum()))
        tags[kind] = hit
        return np.flatnonzero(hit)

    def fact(kind: str, mask: np.ndarray) -> None:
        tags[kind] = mask

    h = rng.integers(0, 2**62, n)
    fore = persons.forename[pidx].copy()
    middle = persons.middle[pidx].copy()
    sur = persons.surname[pidx].copy()
    # Surname change on marriage: most records after the marriage use the new name.
    wed = persons.marriage_day[pidx] <= days
    new_name = wed & (rng.random(n) < 0.85)
    sur[new_name] = persons.married_surname[pidx][new_name]
    fact("married_name", new_name)
    fact("maiden_name", wed & ~new_name)
    for i in draw(
        "alias", (persons.alias_forename[pidx] != "") | (persons.alias_surname[pidx] != ""), rates.alias
    ):
        af, asn = persons.alias_forename[pidx[i]], persons.alias_surname[pidx[i]]
        fore[i], sur[i] = af or fore[i], asn or sur[i]
    # A persistent variant: this agency always holds this person under a misspelt forename.
    ph = _mix(
        persons.pid[pidx].astype(np.uint64) * np.uint64(8)
        + np.uint64(a_ix)
        + np.uint64(params.seed % 2**32) * np.uint64(1 << 35)
    )
    pu = (ph >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    persistent = pu < rates.agency_variant
    counter.add("agency_variant", n, int(persistent.sum()))
    tags["agency_variant"] = persistent
    for i in np.flatnonzero(persistent):
        fore[i] = typo(fore[i], int(ph[i] % np.uint64(2**40)))
    nick = _nicknames()
    for i in draw("nickname", np.fromiter((f in nick for f in fore), bool, n), rates.nickname):
        opts = nick[fore[i]]
        fore[i] = opts[h[i] % min(3, len(opts))]
    var = _variants()
    f_var = np.fromiter((f in var for f in fore), bool, n)
    s_var = np.fromiter((s in var for s in sur), bool, n)
    for i in draw("spelling_variant", f_var | s_var, rates.spelling_variant):
        if f_var[i]:
            fore[i] = var[fore[i]][h[i] % len(var[fore[i]])]
        else:
            sur[i] = var[sur[i]][h[i] % len(var[sur[i]])]
    has_mid = middle != ""
    for i in draw("middle_as_first", has_mid, rates.middle_as_first):
        parts = middle[i].split(" ")
        fore[i], middle[i] = parts[0], " ".join([fore[i], *parts[1:]])
    for i in draw("middle_dropped", has_mid & ~tags["middle_as_first"], rates.middle_dropped):
        middle[i] = ""
    for i in draw(
        "double_barrel_part", np.fromiter(("-" in s for s in sur), bool, n), rates.double_barrel_part
    ):
        sur[i] = sur[i].split("-")[h[i] % 2]
    for i in draw("forename_typo", np.ones(n, bool), rates.forename_typo):
        fore[i] = typo(fore[i], int(h[i] >> 3))
    for i in draw("surname_typo", np.ones(n, bool), rates.surname_typo):
        sur[i] = typo(sur[i], int(h[i] >> 5))
    ocr_hit = draw("ocr", np.ones(n, bool), rates.ocr)
    for i in ocr_hit:  # OCR errors hit whichever name has a confusable pattern
        new = ocr(sur[i], int(h[i] >> 7))
        if new is not None:
            sur[i] = new
        else:
            fore[i] = ocr(fore[i], int(h[i] >> 7)) or typo(fore[i], int(h[i] >> 7))
    for i in draw("name_swap", np.ones(n, bool), rates.name_swap):
        fore[i], sur[i] = sur[i], fore[i]

    # Date of birth.
    dob = persons.dob[pidx].copy()
    y, m, d = ymd(dob)
    i = draw("dob_day_month_swap", (d <= 12) & (d != m), rates.dob_day_month_swap)
    dob[i] = from_ymd(y[i], d[i], m[i])
    ok_year = ~((m == 2) & (d == 29)) & ~tags["dob_day_month_swap"]
    i = draw("dob_year_off", ok_year, rates.dob_year_off)
    dob[i] = from_ymd(y[i] + np.where(h[i] % 2 == 0, 1, -1), m[i], d[i])
    i = draw("dob_day_off", ~tags["dob_day_month_swap"] & ~tags["dob_year_off"], rates.dob_day_off)
    dob[i] += np.where(h[i] % 4 < 2, 1, -1)
    i = draw("dob_placeholder", np.ones(n, bool), rates.dob_placeholder)
    dob[i] = day_number(dt.date(1900, 1, 1))
    missing = rng.random(n) >= comp.dob
    household = persons.dob_blank_agency[pidx] == a_ix
    dob[missing | household] = MISSING_DAY
    fact("dob_missing", missing)
    fact("dob_household_blank", household)

    # Sex.
    sex = persons.sex[pidx].astype(np.int8)
    i = draw("sex_wrong", np.ones(n, bool), rates.sex_wrong)
    sex[i] = 1 - sex[i]
    i = draw("sex_missing", np.ones(n, bool), rates.sex_missing)
    sex[i] = -1

    # Postcode: the address lived at on the day, sometimes a stale one, a typo, NFA or missing.
    k = persons.address_index(pidx, days)
    i = draw("postcode_stale", k > 0, rates.postcode_stale)
    k[i] -= 1
    postcode = persons.postcodes[pidx, k].copy()
    street = persons.streets[pidx, k].copy()
    for i in draw("postcode_typo", np.ones(n, bool), rates.postcode_typo):
        postcode[i] = postcode_typo(postcode[i], int(h[i] >> 9))
    i = draw("postcode_nfa", np.ones(n, bool), rates.postcode_nfa)
    postcode[i] = np.where(h[i] % 3 == 0, "NFA", "NO FIXED ABODE")
    street[i] = ""
    pc_missing = (rng.random(n) >= comp.postcode) & ~tags["postcode_nfa"]
    postcode[pc_missing] = ""
    fact("postcode_missing", pc_missing)

    # PNC id: only people who have been arrested; missing often; occasionally another valid id.
    pnc_ok = has_pnc[pidx]
    present = pnc_ok & (rng.random(n) < comp.pnc)
    fact("pnc_missing", pnc_ok & ~present)
    year = np.where(present, persons.pnc_year[pidx], 0)
    serial = np.where(present, persons.pnc_serial[pidx], 0)
    i = draw("pnc_wrong", present, rates.pnc_wrong)
    serial[i] = (serial[i] + 1 + h[i] % 999) % 9_999_999 + 1

    noise = np.full(n, "", dtype=object)
    stacked = np.column_stack([tags[t] for t in tags]) if tags else np.zeros((n, 0), bool)
    names = list(tags)
    for r in np.flatnonzero(stacked.any(axis=1)):
        noise[r] = ",".join(names[j] for j in np.flatnonzero(stacked[r]))
    return Identities(fore, middle, sur, dob, sex, postcode, street, year, serial, noise)
