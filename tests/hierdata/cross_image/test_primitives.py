"""The deterministic building blocks of cross-image sampling: SplitMix64 against its reference
outputs, stable blake2b hashes, and the helpers over sorted runs."""

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from hierdata.cross_image.primitives import (
    GOLDEN,
    MASK64,
    check_count,
    rank_in_run,
    ranks,
    require_columns,
    run_starts,
    seed_state,
    splitmix64,
    string_hashes,
)


def test_splitmix64_matches_the_reference_sequence_from_seed_zero():
    # Vigna's splitmix64.c seeded with 0: its first three outputs.
    states = np.array([0, GOLDEN, 2 * GOLDEN & MASK64], dtype=np.uint64)
    assert [int(x) for x in splitmix64(states)] == [
        0xE220A8397B1DCDAF,
        0x6E789E6AA1B965F4,
        0x06C45D188009454F,
    ]


def test_string_hashes_are_little_endian_blake2b_and_seed_domains_differ():
    digest = hashlib.blake2b(b"a", digest_size=8).digest()
    assert int(string_hashes(pa.array(["a", "b"]))[0]) == int.from_bytes(digest, "little")
    assert string_hashes(pa.array([], pa.string())).size == 0
    expected = hashlib.blake2b(b"draw:3", digest_size=8).digest()
    assert int(seed_state(3, "draw")) == int.from_bytes(expected, "little")
    assert seed_state(3, "draw") != seed_state(3, "reservoir") != seed_state(4, "draw")


def test_ranks_sort_distinct_values_bytewise_across_chunks():
    rank, values = ranks(pa.chunked_array([["b", "a"], ["c", "a", "B"]]))
    assert values.to_pylist() == ["B", "a", "b", "c"]  # byte order: upper case first
    assert rank.tolist() == [2, 1, 3, 1, 0]


def test_run_starts_and_rank_in_run():
    keys = np.array([1, 1, 2, 3, 3, 3])
    assert run_starts(keys).tolist() == [True, False, True, True, False, False]
    assert rank_in_run(keys).tolist() == [0, 1, 0, 0, 1, 2]
    assert rank_in_run(np.array([], dtype=np.int64)).tolist() == []


def test_checks_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"pool must be >= 0; got -1"):
        check_count("pool", -1)
    check_count("pool", 0)
    table = pa.table({"split": ["train"]})
    with pytest.raises(ValueError, match=r"boxes table lacks columns \['label'\]"):
        require_columns(table, ["split", "label"], "boxes")
    require_columns(table, ["split"], "boxes")
