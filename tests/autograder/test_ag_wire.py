"""Can the wire format carry tensors and numbers faithfully, and does it refuse anything that is not data?"""
from __future__ import annotations

import io
import json
import pickle
import struct

import pytest
import torch

from autograder.worker import wire


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8,
                                   torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool])
def test_every_whitelisted_dtype_round_trips_bit_for_bit(dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(3, 4, generator=g) * 50).to(dtype)
    y = wire.decode(wire.encode({"x": x}))["x"]
    assert type(y) is torch.Tensor and y.dtype == dtype and y.shape == x.shape
    assert torch.equal(y.view(torch.uint8) if dtype != torch.bool else y, x.view(torch.uint8) if dtype != torch.bool else x)


def test_nested_json_values_nan_inf_and_empty_tensors_survive():
    tree = {"a": [1, 2.5, float("nan"), float("-inf"), None, True, "s"], "t": [torch.zeros(0, 3), torch.tensor(7.0)]}
    out = wire.decode(wire.encode(tree))
    assert out["a"][0] == 1 and out["a"][1] == 2.5 and out["a"][2] != out["a"][2] and out["a"][3] == float("-inf")
    assert out["a"][4:] == [None, True, "s"]
    assert out["t"][0].shape == (0, 3) and out["t"][1].item() == 7.0


def test_non_contiguous_and_subclass_tensors_are_sent_as_plain_data():
    class Lying(torch.Tensor):
        def __eq__(self, other):
            return True

    x = torch.arange(12.0).reshape(3, 4).T                   # non-contiguous view
    y = wire.decode(wire.encode([x, torch.ones(2).as_subclass(Lying)]))
    assert torch.equal(y[0], x) and type(y[1]) is torch.Tensor and torch.equal(y[1], torch.ones(2))


def test_values_that_are_not_data_are_refused_when_sending():
    with pytest.raises(wire.WireError):
        wire.encode({"f": lambda: 0})
    with pytest.raises(wire.WireError):
        wire.encode({1: "non-string key"})
    with pytest.raises(wire.WireError):
        wire.encode(torch.zeros(2, dtype=torch.complex64))


def _message(header: dict, body: bytes = b"") -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<4sIQ", b"AGW1", len(h), len(body)) + h + body


@pytest.mark.parametrize("bad", [
    pickle.dumps({"x": 1}),                                                  # a pickle is not a message
    b"AGW1" + b"\x00" * 4,                                                   # truncated prefix
    _message({"v": 1, "tree": {"__tensor__": 0}, "tensors": [{"dtype": "object", "shape": [1], "offset": 0, "nbytes": 8}]}, b"\0" * 8),
    _message({"v": 1, "tree": {"__tensor__": 0}, "tensors": [{"dtype": "float32", "shape": [4], "offset": 0, "nbytes": 16}]}, b"\0" * 8),
    _message({"v": 1, "tree": {"__tensor__": 3}, "tensors": []}),            # dangling tensor reference
    _message({"v": 1, "tree": 1, "tensors": [{"dtype": "float32", "shape": [-1], "offset": 0, "nbytes": 4}]}, b"\0" * 4),
    _message({"v": 2, "tree": 1, "tensors": []}),                            # unknown version
    struct.pack("<4sIQ", b"AGW1", 1 << 30, 0),                              # a header far over the limit
])
def test_malformed_or_hostile_messages_raise_wire_error_without_executing_anything(bad):
    with pytest.raises(wire.WireError):
        wire.decode(bad)


def test_a_pickle_that_would_run_code_is_never_unpickled():
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    payload = pickle.dumps(Boom())
    with pytest.raises(wire.WireError):
        wire.decode(payload)
    with pytest.raises(wire.WireError):
        wire.Reassembler().feed(payload)


def test_reassembler_handles_messages_split_at_every_byte_and_limits_the_body():
    msgs = [wire.encode({"i": i, "t": torch.full((i + 1,), float(i))}) for i in range(3)]
    stream, got = b"".join(msgs), []
    r = wire.Reassembler()
    for k in range(len(stream)):
        got += r.feed(stream[k : k + 1])
    assert [m["i"] for m in got] == [0, 1, 2] and torch.equal(got[2]["t"], torch.full((3,), 2.0))
    small = wire.Reassembler(wire.Limits(max_body=8))
    with pytest.raises(wire.WireError):
        small.feed(wire.encode(torch.zeros(100)))


def test_read_message_reads_a_stream_until_a_clean_end():
    buf = io.BytesIO(wire.encode([1]) + wire.encode({"x": torch.ones(2)}))
    assert wire.read_message(buf) == [1]
    assert torch.equal(wire.read_message(buf)["x"], torch.ones(2))
    assert wire.read_message(buf) is None
