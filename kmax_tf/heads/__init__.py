"""kmax_tf.heads."""
