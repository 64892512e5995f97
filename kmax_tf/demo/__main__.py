"""`python -m kmax_tf.demo`: synthetic data -> TFRecords -> training -> held-out PQ."""
import sys

from kmax_tf.demo import run_demo

if __name__ == "__main__":
  sys.exit(run_demo.main())
