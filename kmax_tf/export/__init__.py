"""Deployment of kMaX-DeepLab (Yu et al., ECCV 2022): SavedModel and TFLite export."""
