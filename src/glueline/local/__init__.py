"""What runs only on a laptop or in CI: the embedded stack (an AWS emulator, PostgreSQL, the local Glue
runner as processes), the compose stack (the same in containers), the local Glue runner itself, the
sample-file generator. Never deployed."""
