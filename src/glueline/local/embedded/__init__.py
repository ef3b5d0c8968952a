"""The embedded stack: an AWS emulator (``emulator``), PostgreSQL (``postgres``) and the local Glue
runner as processes on this machine (``stack``), and its faults (``faults``)."""
