"""Release: aggregate tables under statistical disclosure control, checked by ACRO (the only door out)."""
