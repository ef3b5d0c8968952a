"""The soak: long runs of traffic with faults injected at random, and a verdict (see __main__.py)."""
