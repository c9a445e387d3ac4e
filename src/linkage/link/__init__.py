"""Probabilistic linkage of the pseudonymised extracts (Splink over DuckDB): `linkage run`.

model (config -> Splink settings) · backend (the SQL engine) · train · cluster · metrics · report ·
run (orchestration: `run_linkage`) · command (the click command).
"""
