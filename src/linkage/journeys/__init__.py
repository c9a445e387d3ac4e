"""Case journeys: each person's police, CPS, court and prison records assembled into cases (secure zone)."""
