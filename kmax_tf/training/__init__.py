"""kmax_tf.training: the kMaX-DeepLab trainer.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).

Entry point: `python trainer.py --config_file=... --model_dir=...` (repository
root), which calls kmax_tf.training.experiment.run_experiment.
"""
