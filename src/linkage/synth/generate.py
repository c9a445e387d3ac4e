"""Orchestration: persons in chunks -> cases -> five agency files and the truth, streamed to disk.

Each chunk of persons has its own numpy Generator derived from (seed, chunk number), so a run is
byte-identical for a seed and memory is bounded by the chunk size, not by ``--persons``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from linkage.errors import LinkageError
from linkage.synth import reference as ref
from linkage.synth.identifiers import MISSING_DAY
from linkage.synth.journeys import ALL_OFFENCES, Cases, make_cases
from linkage.synth.layouts import BAD_ROW_KINDS, BUILDERS, ID_PREFIX, LAYOUTS, CsvSink, bad_row
from linkage.synth.noise import AGENCIES, NoiseCounter, render
from linkage.synth.params import ErrorRate, SynthParams
from linkage.synth.people import Persons, make_persons, random_postcodes
from linkage.synth.probation import supervise
from linkage.synth.victims import VICTIMS_SCHEMA, Victims, make_victims, police_columns, truth_table

Progress = Callable[[int, int], None]

RECORDS_SCHEMA = pa.schema(
    [
        ("source_dataset", pa.string()),
        ("source_row", pa.int64()),
        ("person_id", pa.int64()),
        ("case_id", pa.int64()),
        ("hard_case", pa.string()),
        ("noise", pa.string()),
        ("role", pa.string()),  # 'subject', or 'victim': a victim named on the row (its mention record)
        ("victim_index", pa.int8()),  # the victim's position on the row (1, 2, ...); NULL for subjects
    ]
)
BAD_ROWS_SCHEMA = pa.schema(
    [
        ("source_dataset", pa.string()),
        ("source_row", pa.int64()),
        ("kind", pa.string()),
        ("person_id", pa.int64()),
        ("case_id", pa.int64()),
    ]
)
PERSONS_SCHEMA = pa.schema(
    [
        ("person_id", pa.int64()),
        ("sex", pa.string()),
        ("date_of_birth", pa.date32()),
        ("ethnicity", pa.string()),
        ("has_pnc", pa.bool_()),
        ("hard_case", pa.string()),
        ("hard_case_group", pa.int64()),
        ("n_cases", pa.int64()),
    ]
)
JOURNEYS_SCHEMA = pa.schema(
    [
        ("case_id", pa.int64()),
        ("person_id", pa.int64()),
        ("force_area", pa.string()),
        ("da_flag", pa.bool_()),
        ("offence_code", pa.string()),
        ("offence_date", pa.date32()),
        ("recorded_date", pa.date32()),
        ("police_outcome", pa.int64()),
        ("police_outcome_date", pa.date32()),
        ("cps_receipt_date", pa.date32()),
        ("charging_decision", pa.string()),
        ("decision_date", pa.date32()),
        ("cps_area", pa.string()),
        ("court_code", pa.string()),
        ("first_hearing_date", pa.date32()),
        ("verdict", pa.string()),
        ("verdict_date", pa.date32()),
        ("sentence_type", pa.string()),
        ("sentence_date", pa.date32()),
        ("sentence_length_days", pa.int64()),
        ("restraining_order", pa.bool_()),
        ("prison_establishment", pa.string()),
        ("prison_reception_date", pa.date32()),
        ("prison_release_date", pa.date32()),
        ("breach_of_case_id", pa.int64()),
        ("order_breached", pa.bool_()),
        ("suspect_police_employee", pa.bool_()),
        ("probation_type", pa.string()),
        ("probation_start_date", pa.date32()),
        ("probation_expected_end_date", pa.date32()),
        ("probation_requirement", pa.string()),
        ("probation_breach_date", pa.date32()),
        ("probation_end_date", pa.date32()),
        ("probation_termination", pa.string()),
    ]
)


class SynthSummary(BaseModel):
    """What a run wrote: counts per agency, noise actually applied, hard cases, timing."""

    out_dir: str
    persons: int
    seed: int
    da_share: float
    error_rate: str
    hard_cases: bool
    cases: int
    records: dict[str, int]
    bad_rows: dict[str, int]
    hard_case_persons: dict[str, int]
    noise: dict[str, dict[str, int]]
    seconds: float


def generate(
    persons: int,
    seed: int,
    out: Path | str,
    da_share: float = 0.3,
    error_rate: ErrorRate | str = ErrorRate.medium,
    bad_rows: int = 0,
    hard_cases: bool = True,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> SynthSummary:
    """Write the five agency CSVs and the truth for ``persons`` people, deterministically for ``seed``."""
    params = SynthParams.preset(
        persons, error_rate, seed=seed, da_share=da_share, bad_rows=bad_rows, hard_cases=hard_cases
    )
    return generate_from(params, out, progress=progress, overwrite=overwrite)


def _dates(days: np.ndarray) -> pa.Array:
    days = np.asarray(days, dtype=np.int64)
    missing = days == MISSING_DAY
    return pa.array(np.where(missing, 0, days).astype(np.int32), mask=missing).cast(pa.date32())


def _str_or_null(values: np.ndarray) -> pa.Array:
    return pa.array([v if v else None for v in values], type=pa.string())


def _journeys_table(cases: Cases, persons: Persons) -> pa.Table:
    codes = np.array([f.code for f in ref.FORCE_AREAS], dtype=object)
    off = np.array([o.code for o in ALL_OFFENCES], dtype=object)
    ro = cases.restraining_order
    prison = cases.reception != MISSING_DAY
    return pa.Table.from_arrays(
        [
            pa.array(cases.case_id),
            pa.array(persons.pid[cases.pidx]),
            pa.array(codes[cases.force], pa.string()),
            pa.array(cases.da),
            pa.array(off[cases.offence], pa.string()),
            _dates(cases.offence_day),
            _dates(cases.recorded),
            pa.array(cases.outcome, mask=cases.outcome == 0),
            _dates(cases.outcome_day),
            _dates(cases.receipt),
            _str_or_null(cases.decision),
            _dates(cases.decision_day),
            _str_or_null(np.where(cases.receipt != MISSING_DAY, cases.cps_area, "")),
            _str_or_null(np.where(cases.hearing != MISSING_DAY, cases.court_code, "")),
            _dates(cases.hearing),
            _str_or_null(cases.verdict),
            _dates(cases.verdict_day),
            _str_or_null(cases.sentence_type),
            _dates(cases.sentence_day),
            pa.array(cases.sentence_days, mask=cases.sentence_days < 0),
            pa.array(ro == 1, mask=ro < 0),
            _str_or_null(np.where(prison, cases.establishment, "")),
            _dates(cases.reception),
            _dates(cases.release),
            pa.array(cases.breach_of, mask=cases.breach_of < 0),
            pa.array(cases.breached),
            pa.array(cases.police_employee),
            _str_or_null(cases.probation_type),
            _dates(cases.probation_start),
            _dates(cases.probation_expected_end),
            _str_or_null(cases.probation_requirement),
            _dates(cases.probation_breach),
            _dates(cases.probation_end),
            _str_or_null(cases.probation_termination),
        ],
        schema=JOURNEYS_SCHEMA,
    )


def _persons_table(p: Persons, has_pnc: np.ndarray, n_cases: np.ndarray) -> pa.Table:
    return pa.Table.from_arrays(
        [
            pa.array(p.pid),
            pa.array(np.where(p.sex == 1, "F", "M"), pa.string()),
            _dates(p.dob),
            pa.array(p.ethnicity, pa.string()),
            pa.array(has_pnc),
            _str_or_null(p.hard_case),
            pa.array(p.hard_case_group, mask=p.hard_case_group < 0),
            pa.array(n_cases),
        ],
        schema=PERSONS_SCHEMA,
    )


STAGE_DAY = {
    "police": "recorded",
    "prosecution": "receipt",
    "court": "hearing",
    "prison": "reception",
    "probation": "probation_start",
}
VICTIM_STREAM = 7  # victims draw from a generator of their own, so suspects' records do not change


@dataclass
class _Mentions:
    """Victim-mention truth of one agency file: the mentioned case's position in the file's cases."""

    sub_pos: np.ndarray
    index: np.ndarray
    person_id: np.ndarray
    hard_case: np.ndarray  # the victim's hard-case tag ("" for none): a victim may be a suspect too
    noise: np.ndarray


class _Run:
    """State of one generation run: sinks, parquet writers and counters."""

    def __init__(self, params: SynthParams, out: Path) -> None:
        self.params = params
        self.out = out
        self.headers: dict[str, list[str]] = {}
        self.sinks: dict[str, CsvSink] = {}
        truth = out / "truth"
        self.records = pq.ParquetWriter(truth / "records.parquet", RECORDS_SCHEMA)
        self.journeys = pq.ParquetWriter(truth / "journeys.parquet", JOURNEYS_SCHEMA)
        self.persons = pq.ParquetWriter(truth / "persons.parquet", PERSONS_SCHEMA)
        self.victims = pq.ParquetWriter(truth / "victims.parquet", VICTIMS_SCHEMA)
        self.bad: list[dict[str, object]] = []
        self.counter = NoiseCounter()
        self.cases = 0
        self.hard: Counter[str] = Counter()

    def chunk(self, k: int, first_pid: int, n: int, n_chunks: int, hostels: np.ndarray) -> None:
        params = self.params
        rng = np.random.default_rng(np.random.SeedSequence([params.seed, k]))
        persons = make_persons(rng, first_pid, n, params, hostels)
        cases = make_cases(rng, persons, params)
        # probation draws from a stream of its own, so the other agencies' values do not depend on it
        supervise(cases, np.random.default_rng(np.random.SeedSequence([params.seed, k, 5])), params)
        # A PNC id for everyone charged, and for most others (arrested but not charged).
        has_pnc = rng.random(n) < 0.75
        has_pnc[cases.pidx[cases.decision == "Charge"]] = True
        # The PNC id's year is the year of the first arrest: never after the person's first crime here.
        first_day = np.full(n, np.iinfo(np.int64).max)
        np.minimum.at(first_day, cases.pidx, cases.recorded)
        first_year = first_day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        persons.pnc_year = np.minimum(persons.pnc_year, first_year)
        self.cases += len(cases)
        self.hard.update(t for t in persons.hard_case if t)
        self.journeys.write_table(_journeys_table(cases, persons))
        self.persons.write_table(_persons_table(persons, has_pnc, np.bincount(cases.pidx, minlength=n)))
        vrng = np.random.default_rng(np.random.SeedSequence([params.seed, k, VICTIM_STREAM]))
        victims = make_victims(vrng, persons, cases, params, hostels, chunk=k)
        self.victims.write_table(truth_table(cases, persons, victims))
        for agency in AGENCIES:
            day = getattr(cases, STAGE_DAY[agency])
            keep = np.flatnonzero(day != MISSING_DAY)
            sub = cases.take(keep)
            days = getattr(sub, STAGE_DAY[agency])
            ident = render(rng, persons, sub.pidx, days, agency, has_pnc, params, self.counter)
            cols = BUILDERS[agency](sub, ident, persons, rng)
            mentions = None
            if agency == "police":  # every case has a police record: victims are named there
                assert len(keep) == len(cases)
                victim_cols, noise = police_columns(vrng, cases, victims, params, self.counter)
                cols |= victim_cols
                mentions = _mentions(victims, noise)
            total_bad = params.bad_rows
            n_bad = total_bad * (k + 1) // n_chunks - total_bad * k // n_chunks
            self._write(agency, rng, sub, ident.noise, persons, has_pnc, cols, days, n_bad, mentions)

    def _write(
        self,
        agency: str,
        rng: np.random.Generator,
        sub: Cases,
        noise: np.ndarray,
        persons: Persons,
        has_pnc: np.ndarray,
        cols: dict[str, np.ndarray],
        days: np.ndarray,
        n_bad: int,
        mentions: _Mentions | None = None,
    ) -> None:
        layout = LAYOUTS[agency]
        if agency not in self.sinks:
            self.headers[agency] = list(cols)
            self.sinks[agency] = CsvSink(self.out, layout, list(cols))
        sink, header = self.sinks[agency], self.headers[agency]
        m = len(sub)
        n_bad = n_bad if m else 0  # a bad row is a corrupted copy of a good one
        order = np.lexsort((rng.random(m), days))  # extracts come sorted by date, not by person
        total = m + n_bad
        bad_pos = np.sort(rng.choice(total, n_bad, replace=False)) if n_bad else np.zeros(0, np.int64)
        good_pos = np.setdiff1d(np.arange(total), bad_pos)
        rownum = sink.rows + np.arange(1, total + 1)
        id_col = header.index(layout.id_column)
        prefix = (
            cols[layout.id_column][order] if agency == "police" else np.full(m, ID_PREFIX[agency], object)
        )
        ids = [f"{p}{r:0{layout.id_width}d}" for p, r in zip(prefix, rownum[good_pos], strict=True)]
        lists = [cols[c][order].tolist() for c in header]
        lists[id_col] = ids
        rows: list[list[str]] = [[]] * total
        for pos, row in zip(good_pos.tolist(), zip(*lists, strict=True), strict=True):
            rows[pos] = list(row)
        pidx = sub.pidx[order]
        for pos in bad_pos.tolist():
            src = int(rng.integers(0, m))
            kind = BAD_ROW_KINDS[len(self.bad) % len(BAD_ROW_KINDS)]  # self.bad grows by one a row
            p = int(pidx[src])
            template = list(rows[good_pos[src]])
            template[id_col] = f"{prefix[src]}{rownum[pos]:0{layout.id_width}d}"
            year = int(persons.pnc_year[p]) if has_pnc[p] else 2010
            rows[pos] = bad_row(template, header, layout, kind, year, int(persons.pnc_serial[p]))
            self.bad.append(
                {
                    "source_dataset": agency,
                    "source_row": int(rownum[pos]),
                    "kind": kind,
                    "person_id": int(persons.pid[p]),
                    "case_id": int(sub.case_id[order][src]),
                }
            )
        sink.write(rows)
        hard = persons.hard_case[pidx]
        self.records.write_table(
            pa.Table.from_arrays(
                [
                    pa.array(np.full(m, agency, dtype=object), pa.string()),
                    pa.array(rownum[good_pos]),
                    pa.array(persons.pid[pidx]),
                    pa.array(sub.case_id[order]),
                    _str_or_null(hard),
                    _str_or_null(noise[order]),
                    pa.array(np.full(m, "subject", dtype=object), pa.string()),
                    pa.nulls(m, pa.int8()),
                ],
                schema=RECORDS_SCHEMA,
            )
        )
        if mentions is not None:
            row_of = np.empty(m, dtype=np.int64)
            row_of[order] = rownum[good_pos]  # the row each case was written to
            self.records.write_table(_mention_records(agency, mentions, row_of, sub))

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()
        self.records.close()
        self.victims.close()
        self.journeys.close()
        self.persons.close()
        pq.write_table(
            pa.Table.from_pylist(self.bad, schema=BAD_ROWS_SCHEMA), self.out / "truth" / "bad_rows.parquet"
        )


def _mentions(victims: Victims, noise: np.ndarray) -> _Mentions:
    people, at = victims.people, victims.vidx
    return _Mentions(victims.case_pos, victims.index, people.pid[at], people.hard_case[at], noise)


def _mention_records(agency: str, mentions: _Mentions, row_of: np.ndarray, sub: Cases) -> pa.Table:
    """One truth record per victim mention: the row that names the victim, the victim's person id."""
    n = len(mentions.sub_pos)
    return pa.Table.from_arrays(
        [
            pa.array(np.full(n, agency, dtype=object), pa.string()),
            pa.array(row_of[mentions.sub_pos]),
            pa.array(mentions.person_id),
            pa.array(sub.case_id[mentions.sub_pos]),
            _str_or_null(mentions.hard_case),
            _str_or_null(mentions.noise),
            pa.array(np.full(n, "victim", dtype=object), pa.string()),
            pa.array(mentions.index, pa.int8()),
        ],
        schema=RECORDS_SCHEMA,
    )


def generate_from(
    params: SynthParams, out: Path | str, progress: Progress | None = None, overwrite: bool = False
) -> SynthSummary:
    """`generate` with full control of the parameters (rates, window, chunk size)."""
    t0 = time.perf_counter()
    out = Path(out)
    existing = [out / layout.filename for layout in LAYOUTS.values()] + [out / "truth"]
    if not overwrite and any(p.exists() for p in existing):
        raise LinkageError(f"{out}: already holds synthetic data; use --overwrite to replace it")
    (out / "truth").mkdir(parents=True, exist_ok=True)
    hostels = random_postcodes(
        np.random.default_rng(np.random.SeedSequence([params.seed, 2**32])), max(10, params.persons // 2000)
    )
    run = _Run(params, out)
    size = params.chunk_persons
    n_chunks = (params.persons + size - 1) // size
    try:
        for k in range(n_chunks):
            first = k * size
            n = min(size, params.persons - first)
            run.chunk(k, first + 1, n, n_chunks, hostels)
            if progress:
                progress(first + n, params.persons)
    finally:
        run.close()
    counts = {a: run.sinks[a].rows for a in AGENCIES}
    bad = Counter(str(b["source_dataset"]) for b in run.bad)
    summary = SynthSummary(
        out_dir=str(out),
        persons=params.persons,
        seed=params.seed,
        da_share=params.da_share,
        error_rate=params.error_rate.value,
        hard_cases=params.hard_cases,
        cases=run.cases,
        records={a: counts[a] - bad[a] for a in AGENCIES},
        bad_rows={a: bad[a] for a in AGENCIES},
        hard_case_persons=dict(sorted(run.hard.items())),
        noise=run.counter.as_dict(),
        seconds=round(time.perf_counter() - t0, 2),
    )
    manifest = {
        "params": params.model_dump(mode="json"),
        **summary.model_dump(exclude={"seconds", "out_dir"}),
    }
    (out / "truth" / "synth.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return summary
