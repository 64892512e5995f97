"""kmax_tf.evaluation: metrics equal to the official COCO / Cityscapes tools.

Panoptic quality: Kirillov et al., "Panoptic Segmentation", CVPR 2019; the models
evaluated are kMaX-DeepLab's (Qihang Yu et al., "k-means Mask Transformer", ECCV 2022).

Modules (import them directly; this package imports nothing, so the file-based evaluator starts
without TensorFlow):
  panoptic_quality.PanopticQuality   streaming PQ / SQ / RQ (tf_keras metric, in-graph or numpy)
  panoptic                           file-based PQ: `kmax-evaluate`
  mean_iou.MeanIoU                   streaming confusion-matrix mIoU
  coco_mask_ap.CocoMaskAP            COCO mask AP through pycocotools
  cityscapes_instance_ap.CityscapesInstanceAP   Cityscapes instance AP (official convention)
  coco_panoptic_writer.CocoPanopticWriter       COCO panoptic PNG + JSON results
  cityscapes_result_writer.CityscapesResultWriter  Cityscapes semantic / panoptic / instance results
"""
