"""kmax_tf.post_processing."""
