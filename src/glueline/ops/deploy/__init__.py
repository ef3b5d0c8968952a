"""Deploy as data. ``desired`` computes every resource of the pipeline and every policy as plain data
from the settings and an ``Environment`` decided once (no AWS call); ``planner`` compares it with what an
account holds and returns declared API calls (``models``), which ``executor`` runs (deploy) or shows
(plan); ``sweeper`` plans destroy the same way; ``cloudformation`` writes the same desired state as a
CloudFormation template (``glueline package``), which ``make test`` lints with AWS's own rules (cfn-lint).
"""
