"""Linkage config -> Splink SQL: symmetric levels, mirrored blocking rules, token-family checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from linkage.config.linkage import BlockingRule, Condition, Term
from linkage.link.model import blocking_sql, condition_sql


def test_plain_terms_need_no_mirror():
    assert condition_sql(Condition(equal=["sn", "dob_ym"])) == "sn_l = sn_r AND dob_ym_l = dob_ym_r"


def test_crossed_terms_hold_whichever_record_is_on_the_left():
    assert (
        condition_sql(Condition(equal=["dob=dob_swap"])) == "((dob_l = dob_swap_r) OR (dob_swap_l = dob_r))"
    )
    swap = condition_sql(Condition(equal=["fn1=sn", "sn=fn1"]))
    assert swap == "fn1_l = sn_r AND sn_l = fn1_r"  # its own mirror image
    any_part = condition_sql(Condition(equal_any=["sn_p1=sn", "sn_p1"]))
    assert any_part == "(((sn_p1_l = sn_r) OR (sn_l = sn_p1_r)) OR sn_p1_l = sn_p1_r)"


def test_crossed_blocking_rules_become_two_equi_joins():
    rules = blocking_sql(BlockingRule(name="swap", equal=["fn1=sn", "dob"]))
    assert [(r.name, r.sql) for r in rules] == [
        ("swap", "l.fn1 = r.sn AND l.dob = r.dob"),
        ("swap (mirrored)", "l.sn = r.fn1 AND l.dob = r.dob"),
    ]
    (missing,) = blocking_sql(BlockingRule(name="m", equal=["fn1", "sn"], either_missing=["dob"]))
    assert missing.sql == "l.fn1 = r.fn1 AND l.sn = r.sn AND (l.dob IS NULL OR r.dob IS NULL)"


def test_a_rule_could_find_a_pair_when_both_records_hold_what_it_compares():
    """What the blocking-recall estimate counts a rule's misses against (link/metrics.py)."""
    direct, mirror = blocking_sql(BlockingRule(name="swap", equal=["fn1=sn", "dob"]))
    assert (
        direct.applicable
        == "l.fn1 IS NOT NULL AND r.sn IS NOT NULL AND l.dob IS NOT NULL AND r.dob IS NOT NULL"
    )
    assert mirror.applicable.startswith("l.sn IS NOT NULL AND r.fn1 IS NOT NULL")
    (missing,) = blocking_sql(BlockingRule(name="m", equal=["fn1"], either_missing=["dob"]))
    assert (
        missing.applicable == "l.fn1 IS NOT NULL AND r.fn1 IS NOT NULL AND (l.dob IS NULL OR r.dob IS NULL)"
    )
    (capped,) = blocking_sql(BlockingRule(name="names", equal=["sn"], max_block_size=50))
    assert capped.applicable.endswith("AND l.cap_names AND r.cap_names")  # an over-common value: never


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fn1=dob", "different families"),
        ("fn1=fn1_phon", "different families"),  # same purpose, different family: unrelated numbers
        ("firstname", "not a token column"),
        ("fn1; DROP TABLE x", "not a column name"),
    ],
)
def test_terms_are_checked(text, message):
    with pytest.raises(ValueError, match=message):
        Term.parse(text)


def test_condition_needs_exactly_one_form():
    with pytest.raises(ValidationError, match="exactly one"):
        Condition(equal=["sn"], equal_any=["fn1"])
    with pytest.raises(ValidationError, match="exactly one"):
        Condition()


def test_a_term_frequency_column_is_loaded_even_when_no_term_reads_it():
    """A level adjusted by another column's frequencies needs that column in the database (else the
    run would fail in SQL)."""
    from linkage.config.linkage import Comparison
    from linkage.link.model import comparison_columns

    comp = Comparison(
        name="forename",
        missing_when=["fn1_canon"],
        levels=[{"label": "nickname", "equal": ["fn1_canon"], "term_frequency": "fn1"}],
    )
    assert comparison_columns(comp) == {"fn1_canon", "fn1"}


def test_a_date_known_only_swapped_is_compared_not_missing():
    """Token spec v2 leaves dob NULL for a date valid only with day and month swapped (the date is in
    dob_swap): such a pair is not 'missing' when the swapped reading agrees."""
    from linkage.config.linkage import Comparison
    from linkage.link.model import comparison

    comp = Comparison(
        name="date_of_birth",
        missing_when=["dob"],
        unless_any=["dob=dob_swap", "dob_swap"],
        levels=[{"label": "same", "equal": ["dob"]}],
    )
    missing = comparison(comp).get_comparison("duckdb").as_dict()["comparison_levels"][0]["sql_condition"]
    assert missing == (
        "(dob_l IS NULL OR dob_r IS NULL) AND NOT coalesce((((dob_l = dob_swap_r) OR (dob_swap_l = dob_r)) "
        "OR dob_swap_l = dob_swap_r), false)"
    )


def test_a_capped_rule_requires_both_records_below_the_cap():
    (rule,) = blocking_sql(BlockingRule(name="names", equal=["fn1_canon", "sn"], max_block_size=50))
    assert rule.sql == "l.fn1_canon = r.fn1_canon AND l.sn = r.sn AND l.cap_names AND r.cap_names"
    with pytest.raises(ValidationError, match="max_block_size needs plain terms"):
        BlockingRule(name="swap", equal=["fn1=sn"], max_block_size=50)
    with pytest.raises(ValidationError):
        BlockingRule(name="tiny", equal=["sn"], max_block_size=1)  # a block of one record pairs nothing
