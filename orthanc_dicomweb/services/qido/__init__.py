"""QIDO-RS: the search flow (`search`), its matching rules, and what it reads from the core."""
