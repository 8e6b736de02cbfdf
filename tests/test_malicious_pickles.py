"""Pickles that try to run code, in every pickle file tostatic reads (.pdiparams.info,
.pdparams, .pdopt): refused with a FormatError naming the file, and nothing ran (each
payload would create a marker file)."""
from __future__ import annotations

import builtins
import os
import pickle
import subprocess
import time

import numpy as np
import pytest

import tostatic as paddle
from tostatic.serialization import FormatError
from tostatic.serialization.pdiparams_info import load_info
from tostatic.static import InputSpec


class _Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _payloads(marker: str) -> dict[str, bytes]:
    """name -> a pickle that, unpickled by pickle.load, creates `marker`."""
    m = marker.encode()
    via_reduce = {
        "os.system": _Reduce(os.system, f"touch {marker}"),
        "builtins.eval": _Reduce(builtins.eval, f"open({marker!r}, 'w')"),
        "builtins.exec": _Reduce(builtins.exec, f"open({marker!r}, 'w')"),
        "subprocess.Popen": _Reduce(subprocess.Popen, ["touch", marker]),
        "os.mkdir": _Reduce(os.mkdir, marker),
    }
    out = {}
    for name, payload in via_reduce.items():
        out[f"{name} (protocol 2)"] = pickle.dumps({"w": payload}, protocol=2)
        out[f"{name} (protocol 4)"] = pickle.dumps({"w": payload}, protocol=4)
        out[f"{name} nested"] = pickle.dumps({"a": [{"b": (1, payload)}],
                                              "c": np.ones(2, np.float32)}, protocol=2)
    # hand-written opcode streams: GLOBAL + REDUCE, STACK_GLOBAL, INST, OBJ, NEWOBJ,
    # protocol 0 (no PROTO opcode at all), an allowed module with another name
    out["GLOBAL os system"] = b"\x80\x02cos\nsystem\nX" + _str(b"touch " + m) + b"\x85R."
    out["STACK_GLOBAL"] = (b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06"
                           b"system\x93X" + _str(b"touch " + m) + b"\x85R.")
    out["INST"] = b"(X" + _str(b"touch " + m) + b"ios\nsystem\n."
    out["OBJ"] = b"\x80\x02(cos\nsystem\nX" + _str(b"touch " + m) + b"o."
    out["NEWOBJ Popen"] = (b"\x80\x02csubprocess\nPopen\n]q\x00(X\x05\x00\x00\x00touchX"
                           + _str(m) + b"e\x85\x81.")
    out["protocol 0"] = b"cos\nsystem\n(S'touch " + m + b"'\ntR."
    out["numpy module, other name"] = (b"\x80\x02cnumpy\nsave\nX" + _str(m)
                                       + b"K\x01\x86R.")
    out["getattr chain"] = (b"\x80\x02cbuiltins\ngetattr\ncos\n\x86X\x06\x00\x00\x00system"
                            b"\x86R.")
    return out


def _str(b: bytes) -> bytes:
    return len(b).to_bytes(4, "little") + b


PAYLOAD_NAMES = sorted(_payloads("m"))


def _assert_nothing_ran(marker: str, name: str) -> None:
    if "Popen" in name:
        time.sleep(0.1)  # a spawned process would have had time to create it
    assert not os.path.exists(marker)


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
@pytest.mark.parametrize("suffix", [".pdparams", ".pdopt"])
def test_paddle_load_refuses_code(tmp_path, name, suffix):
    marker = str(tmp_path / "ran")
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(_payloads(marker)[name])
    with pytest.raises(FormatError) as e:
        paddle.load(str(path))
    assert str(path) in str(e.value)
    assert "refus" in str(e.value) or "does not" in str(e.value), str(e.value)
    _assert_nothing_ran(marker, name)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("saved")
    paddle.jit.save(paddle.nn.Linear(2, 2), str(d / "m"),
                    input_spec=[InputSpec([None, 2], "float32", "x")], verify=False)
    return {p.name: p.read_bytes() for p in d.iterdir()}


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_pdiparams_info_refuses_code(tmp_path, saved, name):
    marker = str(tmp_path / "ran")
    prefix = str(tmp_path / "m")
    for file, data in saved.items():
        (tmp_path / file).write_bytes(data)
    info = prefix + ".pdiparams.info"
    with open(info, "wb") as f:
        f.write(_payloads(marker)[name])
    for load in (lambda: load_info(info), lambda: paddle.jit.load(prefix)):
        with pytest.raises(FormatError) as e:
            load()
        assert "m.pdiparams.info" in str(e.value), str(e.value)
    _assert_nothing_ran(marker, name)


def test_the_payloads_do_run_under_plain_pickle(tmp_path):
    """The payloads are real: plain pickle.loads runs them (which tostatic never calls)."""
    for name in ("os.mkdir (protocol 2)", "GLOBAL os system", "INST", "protocol 0"):
        marker = str(tmp_path / name.replace(" ", "_"))
        try:
            pickle.loads(_payloads(marker)[name])  # noqa: S301 - proving the payload works
        except Exception:  # noqa: BLE001 - the marker is what matters
            pass
        assert os.path.exists(marker), name
