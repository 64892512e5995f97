"""Regenerates the serialized config descriptor from experiment.proto.

kmax_tf never runs protoc at install or run time and ships no generated
`*_pb2.py` (those are tied to one protobuf runtime version). Instead it ships
`experiment.binpb`, a FileDescriptorSet compiled from `experiment.proto`, and
builds message classes from it at import time. After editing the .proto run

  python -m kmax_tf.config.regenerate

which needs `grpcio-tools` (a test-only dependency, it bundles protoc).
`tests/config/test_regenerate.py` fails when the two files disagree.
"""

import importlib.util
import os
import subprocess
import sys
import tempfile

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))
PROTO_FILE = os.path.join(CONFIG_DIR, "experiment.proto")
DESCRIPTOR_FILE = os.path.join(CONFIG_DIR, "experiment.binpb")
# Compiling relative to the directory holding the `kmax_tf` package names the
# file "kmax_tf/config/experiment.proto" inside the descriptor.
_PROTO_ROOT = os.path.dirname(os.path.dirname(CONFIG_DIR))


def compile_descriptor_set(proto_file: str = PROTO_FILE) -> bytes:
  """Compiles `proto_file` with grpc_tools' protoc; returns the set's bytes.

  protoc runs in a child process: grpc_tools' native compiler crashes when it is
  loaded into a process that has already loaded TensorFlow's protobuf runtime.
  """
  if importlib.util.find_spec("grpc_tools") is None:
    raise ImportError("Regenerating the config descriptor needs grpcio-tools: "
                      "pip install grpcio-tools")
  relative = os.path.relpath(proto_file, _PROTO_ROOT)
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "descriptor.binpb")
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={_PROTO_ROOT}",
         f"--descriptor_set_out={out}", "--include_imports", relative],
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
      raise RuntimeError(f"protoc failed on {proto_file} (exit {result.returncode}): "
                         f"{result.stderr.strip()}")
    with open(out, "rb") as f:
      return f.read()


def main() -> int:
  data = compile_descriptor_set()
  with open(DESCRIPTOR_FILE, "wb") as f:
    f.write(data)
  print(f"wrote {DESCRIPTOR_FILE} ({len(data)} bytes)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
