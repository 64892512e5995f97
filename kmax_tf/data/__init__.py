"""kmax_tf.data: panoptic datasets for kMaX-DeepLab.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).

  datasets / dataset_descriptor   label spaces (get_dataset_descriptor)
  build_panoptic_tfrecords        converter command (COCO, Cityscapes,
                                  ADE20K, custom COCO-panoptic datasets)
  tfrecord_format                 the record format (DeepLab2's)
  input_pipeline.make_dataset     tf.data pipeline of (image, targets)
  panoptic_sample_generator       preprocessing + loss targets

Importing this package does not import TensorFlow (converter worker
processes rely on that).
"""
