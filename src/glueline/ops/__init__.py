"""The operator's tools: the ``glueline`` CLI, deploying (bootstrap and the deployable artifacts), which
environment a command talks to, uploading and watching files, the report. Never deployed."""
