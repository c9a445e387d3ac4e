"""Cell key perturbation (release/perturb.py): the perturbation table's documented properties."""

from __future__ import annotations

from fractions import Fraction
from statistics import mean, pvariance

import pytest

from linkage.config.release import Perturbation
from linkage.release.perturb import KEYS, perturb_count, perturb_magnitude, scoped

COUNTS = range(0, 751)


@pytest.mark.parametrize("base", [5, 10])
def test_zero_stays_zero_and_every_value_is_a_neighbouring_multiple_of_the_base(base):
    for n in COUNTS:
        for k in range(KEYS):
            pub = perturb_count(n, k, base)
            if n == 0:
                assert pub == 0
            assert pub % base == 0 and (n // base) * base <= pub <= (n // base + 1) * base
            assert pub >= n - base + 1 and pub <= n + base - 1  # never a whole base away


def test_unbiased_with_the_documented_variance():
    base = 5
    for n in range(1, 200):
        noise = [perturb_count(n, k, base) - n for k in range(KEYS)]
        r = n % base
        assert abs(mean(noise)) < 0.02 * base
        assert pvariance(noise) == pytest.approx(r * (base - r), abs=0.1)


def test_no_count_below_the_threshold_survives_when_the_threshold_is_a_multiple_of_the_base():
    # the release withholds any count whose perturbed value is below the threshold (tables.protect_cube);
    # with T a multiple of the base, a count >= T is never perturbed below T
    for n in range(10, 751):
        assert min(perturb_count(n, k, 5) for k in range(KEYS)) >= 10


def test_the_same_key_gives_the_same_value_and_one_unit_less_moves_by_0_or_one_base():
    for n in range(11, 300):
        for k in range(0, KEYS, 7):
            assert perturb_count(n, k, 5) == perturb_count(n, k, 5)
            assert {perturb_count(n, k, 5) - perturb_count(n - 1, j, 5) for j in range(KEYS)} <= {-5, 0, 5}


def test_magnitudes_are_randomly_rounded_to_the_magnitude_base_without_bias():
    for value in (Fraction(1234, 7), Fraction(40), Fraction(365, 2), 0.5):
        pubs = [perturb_magnitude(value, k, 7) for k in range(KEYS)]
        assert all(p % 7 == 0 and abs(p - value) < 7 for p in pubs)
        assert abs(mean(pubs) - float(value)) < 0.05


def test_key_scope_release_shifts_every_cell_key_by_the_release_key():
    cell, release = Perturbation(), Perturbation(key_scope="release")
    assert scoped(200, 100, cell) == 200
    assert scoped(200, 100, release) == (200 + 100) % KEYS
    assert {scoped(k, 0, release) for k in range(KEYS)} == set(range(KEYS))
