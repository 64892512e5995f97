"""Command-line tools to deploy kMaX-DeepLab: SavedModel export, TFLite conversion, serving client."""
