r"""Trains and evaluates kMaX-DeepLab: `kmax-train`, runnable from the repository root.

  python trainer.py --config_file=configs/coco/kmax_r50.textproto \
      --model_dir=runs/kmax_r50_coco --mode=train_and_eval

Modes, strategies and flags: `python trainer.py --help`
(kmax_tf/training/train_command.py).
"""
import sys

from kmax_tf.training.train_command import main

if __name__ == "__main__":
  sys.exit(main())
