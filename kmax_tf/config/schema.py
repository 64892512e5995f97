"""Message classes of the experiment config schema (experiment.proto).

The classes are built at import time from the committed FileDescriptorSet
`experiment.binpb` (see kmax_tf.config.regenerate), so no protoc and no
generated *_pb2 module is needed, and any protobuf runtime >= 4.21 works.
They live in a private descriptor pool: importing DeepLab2's own config_pb2 in
the same process cannot clash with them.
"""

import os

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory

PACKAGE = "kmax_tf"
DESCRIPTOR_FILE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "experiment.binpb")


def _load_pool(path: str) -> descriptor_pool.DescriptorPool:
  with open(path, "rb") as f:
    file_set = descriptor_pb2.FileDescriptorSet.FromString(f.read())
  pool = descriptor_pool.DescriptorPool()
  # protoc --include_imports writes dependencies before their dependents.
  for file_proto in file_set.file:
    pool.AddSerializedFile(file_proto.SerializeToString())
  return pool


POOL = _load_pool(DESCRIPTOR_FILE)


def get_message_class(name: str):
  """Returns the message class of `name` ("ExperimentOptions" or full name)."""
  full_name = name if name.startswith(PACKAGE + ".") else f"{PACKAGE}.{name}"
  descriptor = POOL.FindMessageTypeByName(full_name)
  if hasattr(message_factory, "GetMessageClass"):
    return message_factory.GetMessageClass(descriptor)
  # protobuf < 4.22 only has the (since deprecated) factory API.
  return message_factory.MessageFactory(POOL).GetPrototype(descriptor)


ExperimentOptions = get_message_class("ExperimentOptions")
ModelOptions = get_message_class("ModelOptions")
DecoderOptions = get_message_class("DecoderOptions")
LowLevelOptions = get_message_class("LowLevelOptions")
HeadOptions = get_message_class("HeadOptions")
DatasetOptions = get_message_class("DatasetOptions")
TrainerOptions = get_message_class("TrainerOptions")
SolverOptions = get_message_class("SolverOptions")
LossOptions = get_message_class("LossOptions")
EvaluatorOptions = get_message_class("EvaluatorOptions")
