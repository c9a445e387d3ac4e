"""Token spec v1: standardisation and keyed tokenisation shared by every agency."""
