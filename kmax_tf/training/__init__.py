"""kmax_tf.training: the kMaX-DeepLab trainer (Yu et al., "k-means Mask Transformer", ECCV 2022).

Entry point: `python trainer.py --config_file=... --model_dir=...` (repository
root), which calls kmax_tf.training.experiment.run_experiment.
"""
