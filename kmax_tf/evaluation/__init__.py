"""kmax_tf.evaluation."""
