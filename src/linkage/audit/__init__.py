"""`linkage audit`: a plain-words review of every config for a governance reviewer, risk findings,
the JSON Schemas of the config types, and the run-log chain check.

detect (which config a file is) → review (what each config does, format-free) + findings (risky
settings) → render (terminal, Markdown, HTML); command holds the click commands.
"""
