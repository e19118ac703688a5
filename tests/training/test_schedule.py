"""Polynomial decay with linear warm-up."""

import doctest

import keras
import numpy as np
import pytest

import gdcld_zoo.training.schedule
from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.training import PolynomialDecayWithWarmup


def reference(step, peak=1e-3, total=100, warmup=10, end=1e-5, power=2.0):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(max((step - warmup) / (total - warmup), 0.0), 1.0)
    return (peak - end) * (1 - t) ** power + end


def test_values_match_formula():
    schedule = PolynomialDecayWithWarmup(1e-3, 100, warmup_steps=10, end_learning_rate=1e-5, power=2.0)
    for step in (0, 5, 9, 10, 11, 50, 99, 100, 150):
        assert float(schedule(step)) == pytest.approx(reference(step), rel=1e-5), step


def test_no_warmup_starts_at_peak_and_decays_linearly():
    schedule = PolynomialDecayWithWarmup(6e-4, 10)
    np.testing.assert_allclose([float(schedule(s)) for s in range(11)], np.linspace(6e-4, 0, 11), atol=1e-9)


def test_serialisable_inside_optimizer():
    schedule = PolynomialDecayWithWarmup(6e-4, 1000, warmup_steps=50, power=0.9)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert clone._learning_rate.get_config() == schedule.get_config()


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="warmup_steps"):
        PolynomialDecayWithWarmup(1e-3, 10, warmup_steps=11)
    with pytest.raises(InvalidInputError, match="decay_steps"):
        PolynomialDecayWithWarmup(1e-3, 0)


def test_docstring_example():
    result = doctest.testmod(gdcld_zoo.training.schedule)
    assert result.attempted > 0 and result.failed == 0
