"""Test your pipeline changes against a real local stack, from your own pytest suite.

glueline registers a pytest plugin (``glueline.testing.plugin``, through the ``pytest11`` entry point):
install glueline in your test environment and its fixtures are there, nothing to import.

``glueline``
    A started stack with the pipeline deployed, reset for this test: no Glue run active, nothing under
    source/, processed/ or rejected/, no audit item, an empty target table. A :class:`Pipeline`.
``glueline_stack``
    The same stack without the reset (session scope: started once, stopped when the session ends).

The stack is the embedded one (MiniStack, the local Glue runner and PostgreSQL as processes; Java 17 and
PostgreSQL's server binaries needed) unless ``--glueline-stack compose`` (or ``GLUELINE_TEST_STACK=compose``)
asks for the compose stack (a Docker engine needed). Where the stack cannot start here, its tests are
skipped with the reason. Outside pytest, :func:`running_pipeline` gives the same handle.
"""

from glueline.testing.pipeline import Pipeline, StackUnavailable, running_pipeline

__all__ = ["Pipeline", "StackUnavailable", "running_pipeline"]
