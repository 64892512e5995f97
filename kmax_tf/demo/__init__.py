"""kmax_tf.demo: the bundled kMaX-DeepLab demo on synthetic data.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).

Run it with `python -m kmax_tf.demo`; see kmax_tf.demo.run_demo.
"""
