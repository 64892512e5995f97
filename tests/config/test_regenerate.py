"""The committed config descriptor matches a fresh compilation of the .proto."""
import os

from google.protobuf import descriptor_pb2

from kmax_tf.config import regenerate
from kmax_tf.config import schema


def _file_set(data: bytes):
  return descriptor_pb2.FileDescriptorSet.FromString(data)


def test_committed_descriptor_equals_fresh_compilation():
  with open(regenerate.DESCRIPTOR_FILE, "rb") as f:
    committed = _file_set(f.read())
  fresh = _file_set(regenerate.compile_descriptor_set())
  # Compared as messages, not bytes: protoc releases may serialize the same
  # descriptors differently. Any schema edit changes the message.
  assert committed == fresh, (
      "kmax_tf/config/experiment.binpb is stale: run "
      "`python -m kmax_tf.config.regenerate` after editing experiment.proto")


def test_descriptor_names_the_proto_file():
  with open(regenerate.DESCRIPTOR_FILE, "rb") as f:
    files = _file_set(f.read()).file
  assert [f.name for f in files] == ["kmax_tf/config/experiment.proto"]
  assert files[0].package == "kmax_tf"
  assert os.path.isfile(regenerate.PROTO_FILE)
  assert schema.DESCRIPTOR_FILE == regenerate.DESCRIPTOR_FILE


def test_schema_loads_from_descriptor_without_generated_modules():
  message = schema.ExperimentOptions()
  assert message.DESCRIPTOR.full_name == "kmax_tf.ExperimentOptions"
  assert message.DESCRIPTOR.file.pool is schema.POOL
