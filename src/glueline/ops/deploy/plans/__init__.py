"""A plan per service: each compares the desired state (``glueline.ops.deploy.desired``) with what the
account holds and returns ``Change``s of declared steps; none defines a resource. ``storage`` (the
bucket, the job's code, the audit table), ``network`` (Glue's security group, the VPC endpoints),
``database`` (the secret; the RDS instance deploy creates), ``iam`` (the roles), ``compute`` (the Lambda,
its queue and rules, the Glue job and connection); ``base`` what they share."""
