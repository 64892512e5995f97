"""Linear learning-rate warm-up in front of another schedule.

kMaX-DeepLab trains with a
linear warm-up followed by polynomial decay. As in DeepLab2, the wrapped
schedule is evaluated at the global step itself (not at step - warmup), so the
decay curve after the warm-up is the one the paper's configs were tuned with.
"""
import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="kmax_tf")
class WarmUpSchedule(tf_keras.optimizers.schedules.LearningRateSchedule):
  """initial_learning_rate * step / warmup_steps before warmup_steps, then `after_warmup(step)`."""

  def __init__(self, initial_learning_rate: float,
               after_warmup: tf_keras.optimizers.schedules.LearningRateSchedule,
               warmup_steps: int, name: str = "linear_warmup"):
    super().__init__()
    if warmup_steps <= 0:
      raise ValueError(f"warmup_steps must be positive, got {warmup_steps}.")
    self.initial_learning_rate = float(initial_learning_rate)
    self.after_warmup = after_warmup
    self.warmup_steps = int(warmup_steps)
    self.name = name

  def __call__(self, step):
    with tf.name_scope(self.name):
      step = tf.cast(step, tf.float32)
      warmup_steps = tf.cast(self.warmup_steps, tf.float32)
      warming = self.initial_learning_rate * step / warmup_steps
      return tf.cond(step < warmup_steps, lambda: warming,
                     lambda: tf.cast(self.after_warmup(step), tf.float32))

  def get_config(self):
    return {
        "initial_learning_rate": self.initial_learning_rate,
        "after_warmup": tf_keras.optimizers.schedules.serialize(self.after_warmup),
        "warmup_steps": self.warmup_steps,
        "name": self.name,
    }

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config["after_warmup"] = tf_keras.optimizers.schedules.deserialize(config["after_warmup"])
    return cls(**config)
