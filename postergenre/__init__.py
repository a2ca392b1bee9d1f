"""postergenre: predict a movie's genres from its poster."""

__version__ = "0.1.0"
