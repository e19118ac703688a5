"""rename_keys: prefix stripped once, renames applied in order, other keys untouched."""

import doctest

import gdcld_zoo.convert.state_dict
from gdcld_zoo.convert.state_dict import rename_keys


def test_rename_keys_order_and_prefix():
    renames = [(r"\.attention\.output\.dense\.", ".attention.o_proj."), (r"\.output\.dense\.", ".mlp.fc2.")]
    state = {"swin.a.attention.output.dense.w": 1, "swin.a.output.dense.w": 2, "head.swin.w": 3}
    assert rename_keys(state, renames, strip_prefix="swin.") == {
        "a.attention.o_proj.w": 1,
        "a.mlp.fc2.w": 2,
        "head.swin.w": 3,
    }


def test_docstring_example():
    assert doctest.testmod(gdcld_zoo.convert.state_dict).failed == 0
