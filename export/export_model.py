"""`python export/export_model.py` = `kmax-export` (kmax_tf/export/export_command.py)."""
import sys

from kmax_tf.export.export_command import main

if __name__ == "__main__":
  sys.exit(main())
