"""kmax_tf.data."""
