"""Victims as people: who each crime's victims are, as persons of the same person space as suspects.

A chunk's victims are drawn from three groups of persons, all with identities rendered by the same noise
machinery as suspects (`noise.render`, as the police record them):
  * the suspect's partner: most DA crimes of one suspect are against one person (repeat victims); a few
    suspects share a partner (one victim, several perpetrators);
  * other victims (family members, second victims of a DA crime, victims of other crimes): fresh persons
    each, so a suspect whose crimes name several of them abuses several victims;
  * other suspects of the chunk: pairs of DA suspects who are each other's partner (counter-allegations),
    and some victims of non-DA crimes (people in both roles).
Victims who are not suspects get person ids of their own, ``VICTIM_PID_BASE`` x (chunk number + 1) + n,
so they never collide with a suspect's id nor with another chunk's victims. The police row carries victim 1..k
(``MAX_VICTIMS``) in columns ``victim<i>_*``; every mention is a truth record (role 'victim').
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa

from linkage.synth.identifiers import MISSING_DAY
from linkage.synth.journeys import BREACH, Cases
from linkage.synth.layouts import LAYOUTS, formatter, nominal_ids
from linkage.synth.noise import NoiseCounter, render
from linkage.synth.params import SynthParams
from linkage.synth.people import FEMALE, Persons, make_persons

MAX_VICTIMS = 3  # victim columns on a police row
VICTIM_PID_BASE = 10**9  # chunk k's victims who are not suspects: ids from (k + 1) x this
# Victims per crime: DA crimes name 1-3 victims (a partner and, sometimes, other family members).
VICTIMS_PER_DA_CRIME = (0.85, 0.11, 0.04)
NON_DA_NAMED_VICTIM = 0.8  # share of other crimes with a named victim (the rest: none recorded)
PARTNER_IS_VICTIM = 0.75  # of a DA crime's victim 1: the suspect's partner (else another person)
SHARED_PARTNER = 0.03  # DA suspects whose partner is also another suspect's partner
COUNTER_PAIRS = 0.06  # DA suspects paired with another DA suspect as each other's partner
NON_DA_VICTIM_IS_SUSPECT = 0.05  # victims of other crimes who are suspects in this chunk
OPPOSITE_SEX_PARTNER = 0.9
# Children in the victim's household at a DA crime (0, 1, 2, 3, 4): an illustrative mix.
CHILDREN_P = (0.55, 0.20, 0.15, 0.07, 0.03)
ETHNICITY_NOT_STATED = 0.05  # victims' ethnicity recorded as NS (not stated)

VICTIMS_SCHEMA = pa.schema(
    [
        ("case_id", pa.int64()),
        ("victim_index", pa.int8()),
        ("person_id", pa.int64()),
        ("suspect_person_id", pa.int64()),
        ("da_flag", pa.bool_()),
        ("recorded_date", pa.date32()),
        ("relationship", pa.string()),  # partner, family, other (how the synthesis chose the victim)
        ("children_in_household", pa.int64()),  # NULL for crimes other than DA
        ("sex", pa.string()),  # true sex, M / F
        ("date_of_birth", pa.date32()),
        ("ethnicity", pa.string()),  # true 16+1 code
        ("victim_is_suspect", pa.bool_()),  # the victim is also a suspect of some crime here
    ]
)


@dataclass
class Victims:
    """The victims of a chunk's cases: one row per (case, victim index)."""

    case_pos: np.ndarray  # index into the chunk's Cases
    index: np.ndarray  # 1..MAX_VICTIMS
    vidx: np.ndarray  # index into ``people`` (suspects first, then victims who are not suspects)
    relationship: np.ndarray
    children: np.ndarray  # per case (len(cases)), -1 where not a DA crime
    people: Persons
    n_suspects: int

    def __len__(self) -> int:
        return len(self.case_pos)


def concat_persons(parts: list[Persons]) -> Persons:
    return Persons(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Persons)})


def _partners(rng: np.random.Generator, suspects: Persons, da_suspects: np.ndarray, n: int) -> np.ndarray:
    """Partner of each suspect as an index: < n another suspect, -1 a fresh person (filled later),
    -2 - j the partner of the j-th DA suspect (shared)."""
    partner = np.full(n, -1, dtype=np.int64)
    order = rng.permutation(da_suspects)
    n_pairs = int(len(order) * COUNTER_PAIRS / 2)
    men = order[suspects.sex[order] != FEMALE]
    women = order[suspects.sex[order] == FEMALE]
    k = min(n_pairs, len(men), len(women))
    partner[men[:k]], partner[women[:k]] = women[:k], men[:k]
    rest = np.setdiff1d(order, np.concatenate([men[:k], women[:k]]))
    shared = rest[rng.random(len(rest)) < SHARED_PARTNER]
    if len(shared) and len(rest) > 1:
        others = rest[~np.isin(rest, shared)]
        if len(others):
            partner[shared] = -2 - others[rng.integers(0, len(others), len(shared))]
    return partner


def make_victims(
    rng: np.random.Generator,
    suspects: Persons,
    cases: Cases,
    params: SynthParams,
    hostels: np.ndarray,
    chunk: int,
) -> Victims:
    """Choose the victims of every case; overwrite the police row's ``victim_sex``/``victim_relationship``
    with victim 1's recorded sex and relationship, so those columns agree with the named victim."""
    n, n_cases = len(suspects), len(cases)
    da = cases.da
    partner = _partners(rng, suspects, np.unique(cases.pidx[da]), n)
    # victims per case and how each is chosen
    k = np.where(
        da,
        1 + rng.choice(MAX_VICTIMS, size=n_cases, p=VICTIMS_PER_DA_CRIME),
        (rng.random(n_cases) < NON_DA_NAMED_VICTIM).astype(np.int64),
    )
    k[cases.offence == BREACH] = 1  # a breached order protects one person: the partner
    case_pos = np.repeat(np.arange(n_cases), k)
    index = (np.arange(len(case_pos)) - np.repeat(np.cumsum(k) - k, k) + 1).astype(np.int8)
    s = cases.pidx[case_pos]
    is_da = da[case_pos]
    first = index == 1
    to_partner = (
        is_da & first & ((rng.random(len(s)) < PARTNER_IS_VICTIM) | (cases.offence[case_pos] == BREACH))
    )
    to_suspect = ~is_da & (rng.random(len(s)) < NON_DA_VICTIM_IS_SUSPECT)
    # fresh persons: one per suspect whose partner is a fresh person, one per other victim slot
    own_partner = np.zeros(n, bool)
    own_partner[s[to_partner]] = True
    own_partner &= partner == -1
    fresh_partner = np.flatnonzero(own_partner)
    other_slots = np.flatnonzero(~to_partner & ~to_suspect)
    want_female = np.where(
        rng.random(len(fresh_partner)) < OPPOSITE_SEX_PARTNER,
        suspects.sex[fresh_partner] != FEMALE,
        suspects.sex[fresh_partner] == FEMALE,
    )
    groups = [
        (int(want_female.sum()), 1.0),
        (int((~want_female).sum()), 0.0),
        (len(other_slots), 0.6),  # other victims: women more often than men
    ]
    if sum(size for size, _ in groups) >= VICTIM_PID_BASE:  # pragma: no cover - 10^9 victims in a chunk
        raise ValueError("too many victims in one chunk for their person-id range")
    no_hard_cases = params.model_copy(update={"hard_cases": False})
    parts, first_pid = [suspects], VICTIM_PID_BASE * (chunk + 1)
    for size, female_share in groups:
        parts.append(make_persons(rng, first_pid, size, no_hard_cases, hostels, female_share=female_share))
        first_pid += size
    people = concat_persons(parts)
    women_at = n + np.arange(groups[0][0])
    men_at = n + groups[0][0] + np.arange(groups[1][0])
    others_at = n + groups[0][0] + groups[1][0] + np.arange(groups[2][0])
    partner_of = partner.copy()
    partner_of[fresh_partner[want_female]] = women_at
    partner_of[fresh_partner[~want_female]] = men_at
    shared = partner_of <= -2
    partner_of[shared] = partner_of[-2 - partner_of[shared]]  # the other suspect's partner
    partner_of[partner_of < 0] = -1  # that suspect's partner was itself shared or never needed
    vidx = np.full(len(s), -1, dtype=np.int64)
    vidx[to_partner] = partner_of[s[to_partner]]
    unresolved = to_partner & (vidx < 0)  # rare: a shared partner that was never drawn
    vidx[other_slots] = others_at
    vidx[to_suspect] = rng.integers(0, n, int(to_suspect.sum())) if n else -1
    # a suspect is never their own victim; unresolved slots fall back to another slot's person
    clash = (vidx == s) | unresolved
    if clash.any():
        vidx[clash] = others_at[rng.integers(0, len(others_at), int(clash.sum()))] if len(others_at) else -1
    keep = vidx >= 0
    relationship = np.where(to_partner, "partner", np.where(is_da, "family", "other")).astype(object)
    victims = Victims(
        case_pos=case_pos[keep],
        index=index[keep],
        vidx=vidx[keep],
        relationship=relationship[keep],
        children=np.where(da, rng.choice(len(CHILDREN_P), size=n_cases, p=CHILDREN_P), -1),
        people=people,
        n_suspects=n,
    )
    _police_victim_columns(rng, cases, victims)
    return victims


def _police_victim_columns(rng: np.random.Generator, cases: Cases, v: Victims) -> None:
    """victim_sex and victim_relationship of each crime from its victim 1 (or 'Unknown'/'Other')."""
    first = v.index == 1
    pos = v.case_pos[first]
    sex = np.full(len(cases), "Unknown", dtype=object)
    sex[pos] = np.where(v.people.sex[v.vidx[first]] == FEMALE, "Female", "Male")
    sex[rng.random(len(cases)) < 0.03] = "Unknown"
    cases.victim_sex = sex
    rel = np.where(cases.da, "Family member", "Other").astype(object)
    partner = first & (v.relationship == "partner")
    ex = rng.random(int(partner.sum())) < 0.45
    rel[v.case_pos[partner]] = np.where(ex, "Ex-partner", "Partner")
    cases.victim_relationship = rel


def police_columns(
    rng: np.random.Generator,
    cases: Cases,
    v: Victims,
    params: SynthParams,
    counter: NoiseCounter,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The victim columns of police.csv (one value per case) and each mention's noise tags."""
    n = len(cases)
    ident = render(
        rng,
        v.people,
        v.vidx,
        cases.recorded[v.case_pos],
        "police",
        np.zeros(len(v.people), bool),
        params,
        counter,
    )
    gender = np.array(["Male", "Female"], dtype=object)[np.maximum(ident.sex, 0)]
    gender[ident.sex < 0] = ""
    eth = v.people.ethnicity[v.vidx].copy()
    eth[rng.random(len(v)) < ETHNICITY_NOT_STATED] = "NS"
    values = {
        "forename": ident.forename,
        "surname": ident.surname,
        "dob": formatter(LAYOUTS["police"].date_format)(ident.dob, ""),
        "gender": gender,
        "postcode": ident.postcode,
        "ethnicity_code": eth,
        "nominal_id": nominal_ids(
            v.people.pid[v.vidx], cases.force[v.case_pos], cases.case_id[v.case_pos] * 4 + v.index
        ),
    }
    cols: dict[str, np.ndarray] = {}
    for i in range(1, MAX_VICTIMS + 1):
        at = v.index == i
        for name, vals in values.items():
            col = np.full(n, "", dtype=object)
            col[v.case_pos[at]] = vals[at]
            cols[f"victim{i}_{name}"] = col
    cols["children_in_household"] = np.where(v.children >= 0, v.children.astype(str), "").astype(object)
    return cols, ident.noise


def truth_table(cases: Cases, suspects: Persons, v: Victims) -> pa.Table:
    """truth/victims.parquet rows: crime -> victim person, with the victim's true attributes."""
    pid = v.people.pid[v.vidx]
    dob = v.people.dob[v.vidx]
    children = v.children[v.case_pos]
    is_suspect = v.vidx < v.n_suspects
    return pa.Table.from_arrays(
        [
            pa.array(cases.case_id[v.case_pos]),
            pa.array(v.index, pa.int8()),
            pa.array(pid),
            pa.array(suspects.pid[cases.pidx[v.case_pos]]),
            pa.array(cases.da[v.case_pos]),
            pa.array(cases.recorded[v.case_pos].astype(np.int32)).cast(pa.date32()),
            pa.array(v.relationship, pa.string()),
            pa.array(children, mask=children < 0),
            pa.array(np.where(v.people.sex[v.vidx] == FEMALE, "F", "M"), pa.string()),
            pa.array(np.where(dob == MISSING_DAY, 0, dob).astype(np.int32)).cast(pa.date32()),
            pa.array(v.people.ethnicity[v.vidx], pa.string()),
            pa.array(is_suspect),
        ],
        schema=VICTIMS_SCHEMA,
    )
