"""`python export/convert_tflite.py` = `kmax-convert-tflite`.

The code is kmax_tf/export/convert_tflite_command.py.
"""
import sys

from kmax_tf.export.convert_tflite_command import main

if __name__ == "__main__":
  sys.exit(main())
