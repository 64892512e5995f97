"""kmax_tf.losses."""
