"""What ETL_Lambda_Function does (``services/lambda/handler.py`` wires it): admit announced files, make
sure a Glue run takes them. Shipped in the Lambda zip with ``glueline.shared``: standard library and boto3."""
