"""`python -m export.serving_client` = `kmax-serving-client` (kmax_tf/export/serving_client.py)."""
import sys

from kmax_tf.export.serving_client import main

if __name__ == "__main__":
  sys.exit(main())
