"""lazy_attributes: imported on first use, unknown names an AttributeError."""

import doctest

import pytest

import gdcld_zoo.lazy_imports
from gdcld_zoo.lazy_imports import lazy_attributes


def test_known_and_unknown_names():
    getattr_ = lazy_attributes("pkg", {"dumps": "json"})
    assert getattr_("dumps")([1]) == "[1]"
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'loads'"):
        getattr_("loads")


def test_packages_resolve_their_lazy_names():
    import gdcld_zoo.data
    import gdcld_zoo.training

    assert callable(gdcld_zoo.data.make_dataset) and callable(gdcld_zoo.training.train)


def test_docstring_example():
    assert doctest.testmod(gdcld_zoo.lazy_imports).failed == 0
