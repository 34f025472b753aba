"""Artifact store tests use the shared moto S3 server."""

from tests.fixtures.s3 import s3_endpoint  # noqa: F401
