"""Token spec v2: standardisation and keyed tokenisation shared by every agency."""
