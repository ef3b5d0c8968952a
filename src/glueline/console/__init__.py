"""``glueline console``: a local web page of what the pipeline records — files by status, each file's
lifecycle and counts, its rejected rows, the Glue runs — read through the same target resolution as
every other command (embedded stack, compose stack, or an AWS account by ``--profile``).

``data`` reads (the one module that talks to AWS), ``app`` renders (Flask, Jinja2 templates and a
stylesheet shipped in this package; nothing is fetched from the internet), ``server`` serves it.
"""
