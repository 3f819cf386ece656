#!/usr/bin/python3
"""safetensors both ways between PyTorch and nnlua (run by a developer).

  /usr/bin/python3 tests/ref/safetensors_interop.py write
      writes tests/ref/torch_mlp.safetensors: the state dict of a PyTorch
      Sequential(Linear(4, 3), ReLU(), Linear(3, 2)), with a test input and
      PyTorch's output for it in the metadata (tests/checkpoint_spec.lua
      loads it into the matching nnlua model)
  /usr/bin/python3 tests/ref/safetensors_interop.py read FILE
      reads a file nnlua wrote, with nothing but json and struct, and
      prints each tensor's name, dtype, shape and sum

Debian 12 has no python3-safetensors; the format is simple enough to write
and read here by hand.
"""
import json
import os
import struct
import sys

import torch

DT = {"F32": (torch.float32, 4), "I64": (torch.int64, 8), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}


def write(path, tensors, metadata):
    header, data, offset = {}, b"", 0
    for name, t in tensors.items():
        raw = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32" if t.dtype == torch.float32 else "I64",
                        "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        dtype, size = DT[e["dtype"]]
        lo, hi = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(b[8 + n + lo:8 + n + hi]), dtype=dtype).reshape(e["shape"])
    return out, meta


if __name__ == "__main__":
    if sys.argv[1] == "write":
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
        x = torch.randn(2, 4)
        y = model(x)
        meta = {"input": json.dumps(x.tolist()), "output": json.dumps(y.tolist()),
                "torch": torch.__version__}
        here = os.path.dirname(os.path.abspath(__file__))
        write(os.path.join(here, "torch_mlp.safetensors"), model.state_dict(), meta)
        print("wrote torch_mlp.safetensors")
    else:
        tensors, meta = read(sys.argv[2])
        for name, t in sorted(tensors.items()):
            print(name, str(t.dtype), list(t.shape), float(t.double().sum()))
        print("metadata", meta)
