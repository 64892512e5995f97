"""kmax_tf.runtime: process- and trace-level measures, kept out of the model code.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).

Each measure here changes no number the model computes; it only saves time or
memory, and its module says what it saved when measured (BENCHMARKS.md keeps
the runs):
  lean_import.import_tensorflow_lean  imports TensorFlow without Keras 3 and
                                      pandas (entry points, before TensorFlow)
  heap_trimmer.HeapTrimmer            returns freed heap pages to the OS while
                                      a training process runs
  no_autograph.without_autograph      traces a Keras `call` without AutoGraph
                                      (the model and the loss)
Entry points set up their process with them (kmax_tf.training.train_command,
kmax_tf.demo.run_demo); library functions such as run_experiment do not.
"""
