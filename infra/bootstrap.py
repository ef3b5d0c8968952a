#!/usr/bin/env python3
"""Create or converge every resource of the glueline pipeline — the same code path for every target.

The target is chosen only by the standard AWS configuration:

    AWS_PROFILE=prod python infra/bootstrap.py --db-url postgresql://etl:…@mydb.xxxx.rds.amazonaws.com/bank
    python infra/bootstrap.py            # the running embedded stack (`glueline up -d`)

It is `glueline bootstrap`, the walkthrough's name for `glueline deploy`; the logic lives in
glueline.ops.deploy. Run it twice: the second run reports every resource unchanged.
"""

import sys

from glueline.ops.cli import main

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "bootstrap", *sys.argv[1:]]
    main()
