"""The operator's side: the ``glueline`` CLI, the target a command talks to (resolved once), the database
decided once, deploying (the deployable artifacts, ``deploy/``), uploading and watching files, the
report. Never deployed."""
