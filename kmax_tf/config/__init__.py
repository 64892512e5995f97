"""kmax_tf.config."""
