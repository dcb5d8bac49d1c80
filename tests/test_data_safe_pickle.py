"""Safe pickles: plain data only, Python-2 strings, atomic protocol-2 writes."""

from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path

import pytest

from csagan.data.errors import LayoutError, PickleFileError, UnsafePickleError
from csagan.data.safe_pickle import safe_dump_pickle, safe_load_pickle, safe_loads_pickle


def test_round_trip_of_plain_data(tmp_path: Path) -> None:
    obj = [[1, 2, 3], ("a", "b"), {0: "<end>", "x": 1.5}, None, True, -(2**40)]
    path = safe_dump_pickle(obj, tmp_path / "sub" / "x.pickle")
    assert safe_load_pickle(path) == obj
    assert pickle.loads(path.read_bytes()) == obj  # readable by the standard unpickler


def test_bytes_and_sets_load_from_protocol_4() -> None:
    obj = [b"raw", {1, 2}, frozenset({"a"})]
    assert safe_loads_pickle(pickle.dumps(obj, protocol=4)) == obj


def test_dump_is_protocol_2_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "x.pickle"
    path.write_bytes(b"old")
    safe_dump_pickle([1], path)
    assert path.read_bytes()[:2] == b"\x80\x02"
    assert os.listdir(tmp_path) == ["x.pickle"]


def test_failed_dump_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "x.pickle"
    safe_dump_pickle([1], path)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        safe_dump_pickle([lambda: 0], path)
    assert safe_load_pickle(path) == [1] and os.listdir(tmp_path) == ["x.pickle"]


@pytest.mark.parametrize("obj", [collections.OrderedDict(a=1), Path("x"), os.system])
def test_every_global_is_refused(tmp_path: Path, obj: object) -> None:
    path = tmp_path / "g.pickle"
    path.write_bytes(pickle.dumps([obj], protocol=2))
    with pytest.raises(UnsafePickleError, match=rf"{path}.*refuses the global"):
        safe_load_pickle(path)


def test_code_in_a_pickle_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (open, (str(marker), "w"))

    data = pickle.dumps(Evil(), protocol=4)
    with pytest.raises(UnsafePickleError):
        safe_loads_pickle(data)
    assert not marker.exists()


def test_python2_byte_strings_are_decoded() -> None:
    # protocol 2, SHORT_BINSTRING (Python 2 str) 'bird' and 'caf\xe9', in a list
    ascii_only = b"\x80\x02]q\x00(U\x04birdq\x01e."
    latin = b"\x80\x02]q\x00(U\x04bird" + b"U\x04caf\xe9e."
    assert safe_loads_pickle(ascii_only) == ["bird"]
    assert safe_loads_pickle(latin) == ["bird", "café"]


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pickle"
    bad.write_bytes(b"\x80\x02]q\x00(X\x03")
    with pytest.raises(PickleFileError, match=rf"{bad}: not a readable pickle"):
        safe_load_pickle(bad)
    with pytest.raises(LayoutError, match="not found"):
        safe_load_pickle(tmp_path / "missing.pickle")
