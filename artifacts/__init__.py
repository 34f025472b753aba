"""Artifact storage (verification uploads, run artifacts): a local folder or S3."""
