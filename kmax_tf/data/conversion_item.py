"""One image (and its COCO-panoptic annotation) to convert into a record.

"""

from typing import Any, Mapping, NamedTuple, Optional, Sequence


class ConversionItem(NamedTuple):
  """Paths and segments of one example.

  Attributes:
    image_path: Encoded RGB image file (JPEG or PNG).
    name: Name stored as image/filename (DeepLab2: the image file stem).
    label_path: COCO-panoptic PNG, or None for unlabeled splits.
    segments: The image's segments_info entries (None when unlabeled).
  """
  image_path: str
  name: str
  label_path: Optional[str] = None
  segments: Optional[Sequence[Mapping[str, Any]]] = None
