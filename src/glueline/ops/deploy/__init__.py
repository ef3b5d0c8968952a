"""Deploy as data, shaped like chalice's: ``desired`` computes every resource of the pipeline and every
policy as plain data from the settings and the account's facts (no AWS call); ``account`` finds those
facts in an account; ``plans/`` compares the desired state with what the account holds, a plan per
service, and returns declared API calls (``models``); ``executor`` runs them (deploy) or shows them (plan);
``sweeper`` plans destroy the same way; ``deployer`` puts these together (``deployer_for``: the one way to
get one); ``cloudformation`` writes the same desired state as a CloudFormation template (``glueline
package``), which ``make test`` lints with AWS's own rules (cfn-lint).
"""
