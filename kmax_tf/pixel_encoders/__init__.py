"""kmax_tf.pixel_encoders."""
