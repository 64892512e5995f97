"""kmax_tf.checkpoints."""
