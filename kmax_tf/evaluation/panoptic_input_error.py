"""The error the panoptic evaluators raise for malformed inputs (COCO panoptic format checks).

A subclass of ValueError so callers that catch ValueError keep working; the command line turns
it into a one-line message and exit status 2 instead of a traceback.
"""


class PanopticInputError(ValueError):
  """Ground truth or predictions violate the COCO panoptic format."""
