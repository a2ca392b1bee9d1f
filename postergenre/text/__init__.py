"""Text on the poster: the words read from it (ocr) and a genre head on those words (head)."""
