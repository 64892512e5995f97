"""kmax_tf.pixel_decoder."""
