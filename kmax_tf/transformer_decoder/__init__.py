"""kmax_tf.transformer_decoder."""
