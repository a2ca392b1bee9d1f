"""A trained model's folder: its layout and manifest, its card, and saving, shipping, quantizing and thinning it."""
