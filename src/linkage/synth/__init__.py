"""Synthetic police, CPS, court and prison extracts with ground truth (`linkage synth`).

The data are generated, not sampled from anyone: persons with UK-like identities, case journeys
with attrition shaped by published England & Wales figures, realistic identifier noise and hard
cases (twins, Jr/Sr, households, hostels). See docs/synthetic-data.md.
"""

from linkage.synth.generate import SynthSummary, generate, generate_from
from linkage.synth.params import ErrorRate, SynthParams

__all__ = ["ErrorRate", "SynthParams", "SynthSummary", "generate", "generate_from"]
