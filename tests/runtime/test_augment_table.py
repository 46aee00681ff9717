"""The augment ops are described once (archspec.lang.augment): the spec's schema and the data layer's checks
both come from that table."""

from __future__ import annotations

import math

import pytest

from archspec.lang.augment import AUGMENT, augment_json_schema, defaults
from archspec.lang.schema import AUGMENT_OPS
from archspec.runtime.data.common import DataError, parse_augment


def test_the_table_gives_the_schema_fragments_the_schema_holds():
    assert augment_json_schema() == AUGMENT_OPS
    old = ("pad_crop", "hflip", "scale_jitter", "random_crop", "lighting")
    assert {op: AUGMENT_OPS[op] for op in old} == {  # what the schema checked before the table existed
        "pad_crop": {"pad": {"type": "integer", "minimum": 0}, "size": {"type": "integer", "minimum": 1},
                     "fill": {"type": "number"}},
        "hflip": {"p": {"type": "number", "minimum": 0, "maximum": 1}},
        "scale_jitter": {"min": {"type": "integer", "minimum": 1}, "max": {"type": "integer", "minimum": 1}},
        "random_crop": {"size": {"type": "integer", "minimum": 1}},
        "lighting": {"alphastd": {"type": "number", "minimum": 0}},
    }


def test_the_data_layer_takes_its_defaults_from_the_table():
    ops = parse_augment([{"op": op} for op in AUGMENT if op != "scale_jitter"], tuple(AUGMENT), "test")
    assert ops == [(op, defaults(op)) for op in AUGMENT if op != "scale_jitter"]
    assert defaults("pad_crop") == {"pad": 4, "size": None, "fill": 0.0}
    assert defaults("hflip") == {"p": 0.5} and defaults("lighting") == {"alphastd": 0.1}


@pytest.mark.parametrize("entry, message", [
    ({"op": "pad_crop", "pad": -1}, "augment op pad_crop: pad must be an integer >= 0, not -1"),
    ({"op": "pad_crop", "size": 0}, "augment op pad_crop: size must be an integer >= 1, not 0"),
    ({"op": "pad_crop", "fill": math.nan}, "augment op pad_crop: fill must be a number in [-inf, inf], not nan"),
    ({"op": "hflip", "p": 2}, "augment op hflip: p must be a number in [0, 1], not 2"),
    ({"op": "hflip", "p": True}, "augment op hflip: p must be a number in [0, 1], not True"),
    ({"op": "lighting", "alphastd": -0.1}, "augment op lighting: alphastd must be a number in [0, inf], not -0.1"),
    ({"op": "scale_jitter", "min": 10}, "augment op scale_jitter: max must be an integer >= 1, not None"),
    ({"op": "scale_jitter", "min": 10, "max": 5}, "augment op scale_jitter: min 10 is above max 5"),
    ({"op": "random_crop", "size": 1.5}, "augment op random_crop: size must be an integer >= 1, not 1.5"),
    ({"op": "hflip", "q": 1}, "augment op hflip has no parameter 'q'; it takes p"),
    ({"op": "blur"}, "unknown augment op 'blur' (entry 1); known: pad_crop, hflip, scale_jitter, random_crop, "
                     "lighting, rand_augment, trivial_augment, random_erasing, random_resized_crop"),
])
def test_bad_parameters_are_refused_with_the_same_messages(entry, message):
    with pytest.raises(DataError) as e:
        parse_augment([entry], tuple(AUGMENT), "test")
    assert str(e.value) == message
