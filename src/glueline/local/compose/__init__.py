"""The compose stack: the pipeline's AWS side and database in containers (``stack``), the Docker engine
and Compose as it calls them (``engine``), its faults (``faults``), the offline stand-in images (``images``)."""
