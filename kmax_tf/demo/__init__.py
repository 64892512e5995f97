"""kmax_tf.demo: the bundled demo (kMaX-DeepLab, Yu et al., ECCV 2022) on synthetic data.

Run it with `python -m kmax_tf.demo`; see kmax_tf.demo.run_demo.
"""
