"""kmax_tf.tools."""
