"""tf.distribute strategies for the kMaX-DeepLab trainer.

kMaX-DeepLab (trained on 32
TPU cores; DeepLab2 supports one device, several GPUs or TPUs). Here:

  one_device             the first GPU, or the CPU
  mirrored               all local GPUs (--num_gpus), or all logical CPUs
  multi_worker_mirrored  several machines (or processes) described by TF_CONFIG
  tpu                    a Cloud TPU (--tpu=name, or "local")
"""
import json
import os
from typing import Optional

import tensorflow as tf

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")


def configure_cpu_devices(count: int) -> None:
  """Splits the CPU into `count` logical devices (distribution without accelerators).

  Must run before TensorFlow initializes its devices.

  Args:
    count: logical CPU devices to create; <= 1 leaves the CPU as is.
  """
  if count > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])


def create_strategy(name: str, num_gpus: int = 0, tpu: Optional[str] = None
                    ) -> tf.distribute.Strategy:
  """Creates the strategy `name` (one of STRATEGIES).

  Args:
    name: 'one_device', 'mirrored', 'multi_worker_mirrored' or 'tpu'.
    num_gpus: local GPUs to use (0: the CPU, or all logical CPUs for
      'mirrored').
    tpu: TPU name or address for 'tpu'; None, '' or 'local' for a local TPU.
  """
  if name not in STRATEGIES:
    raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}.")
  if num_gpus < 0:
    raise ValueError(f"--num_gpus must not be negative, got {num_gpus}.")
  gpus = [f"/device:GPU:{i}" for i in range(num_gpus)]
  if name == "one_device":
    return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/device:CPU:0")
  if name == "mirrored":
    devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)
  if name == "multi_worker_mirrored":
    if "TF_CONFIG" not in os.environ:
      raise ValueError("--strategy=multi_worker_mirrored needs the TF_CONFIG environment "
                       "variable describing the cluster and this worker's task.")
    # RING works everywhere (CPU and GPU); NCCL is picked automatically on GPUs by AUTO.
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
  resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
  if tpu not in (None, "", "local"):
    tf.config.experimental_connect_to_cluster(resolver)
  tf.tpu.experimental.initialize_tpu_system(resolver)
  return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes checkpoints, summaries and results.

  Args:
    strategy: the training strategy; only multi-worker strategies have
      non-chief processes.
  """
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return True
  task_type, task_id = resolver.task_type, resolver.task_id
  if task_type in (None, "chief"):
    return True
  cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
  return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_name(strategy: tf.distribute.Strategy) -> str:
  """'chief', or '<task type>_<task id>' of this process in a cluster.

  Args:
    strategy: the training strategy.
  """
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or resolver.task_type is None:
    return "chief"
  return f"{resolver.task_type}_{resolver.task_id}"
