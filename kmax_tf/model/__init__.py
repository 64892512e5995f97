"""kmax_tf.model: the kMaX-DeepLab meta architecture."""
