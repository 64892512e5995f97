"""Small reusable layers shared by the kMaX-DeepLab components."""
