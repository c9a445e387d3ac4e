"""Case journeys: each person's police, CPS, court, prison and probation records as cases (secure zone)."""
