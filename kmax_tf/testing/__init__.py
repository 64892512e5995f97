"""kmax_tf.testing."""
