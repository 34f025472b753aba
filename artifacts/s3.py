"""The S3 artifact store (AWS S3, R2, MinIO, moto), over aioboto3.

One client is opened on first use and kept; the bucket is created then if it is missing.
Errors name the operation, the key and S3's error code, never a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from artifacts.store import (
    DEFAULT_CONTENT_TYPE,
    ArtifactError,
    ArtifactNotFound,
    ArtifactStore,
    validate_key,
    validate_prefix,
)
from schemas.artifacts import ArtifactObject

_MISSING_BUCKET = {"404", "NoSuchBucket", "NotFound"}
_MISSING_KEY = {"404", "NoSuchKey", "NotFound"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))


class S3ArtifactStore(ArtifactStore):
    """Artifacts as objects of one bucket."""

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url or None
        self.region = region
        self._session = aioboto3.Session(
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            region_name=region,
        )
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def _s3(self) -> Any:
        """The shared client, opened (and the bucket ensured) on first use."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                # Custom endpoints (MinIO, moto, R2) want path-style addressing.
                style = "path" if self.endpoint_url else "auto"
                config = Config(
                    signature_version="s3v4",
                    s3={"addressing_style": style},
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=5,
                    read_timeout=60,
                )
                stack = contextlib.AsyncExitStack()
                try:
                    client = await stack.enter_async_context(
                        self._session.client("s3", endpoint_url=self.endpoint_url, config=config)
                    )
                    await self._ensure_bucket(client)
                except BaseException:
                    await stack.aclose()
                    raise
                self._stack, self._client = stack, client
        return self._client

    async def _ensure_bucket(self, client: Any) -> None:
        try:
            await client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _code(exc) not in _MISSING_BUCKET:
                raise ArtifactError(f"bucket {self.bucket!r}: {_code(exc)}") from None
        except BotoCoreError as exc:
            raise ArtifactError(f"S3 unreachable: {type(exc).__name__}") from None
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            await client.create_bucket(**kwargs)
        except ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise ArtifactError(f"creating bucket {self.bucket!r}: {_code(exc)}") from None

    async def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        """Upload ``data`` under ``key``."""
        validate_key(key)
        client = await self._s3()
        try:
            await client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error("put", key, exc) from None

    async def get(self, key: str) -> ArtifactObject:
        """Download ``key``; raises ArtifactNotFound."""
        validate_key(key)
        client = await self._s3()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as body:
                data = await body.read()
        except ClientError as exc:
            if _code(exc) in _MISSING_KEY:
                raise ArtifactNotFound(f"artifact {key!r} not found") from None
            raise _error("get", key, exc) from None
        except BotoCoreError as exc:
            raise _error("get", key, exc) from None
        content_type = response.get("ContentType") or DEFAULT_CONTENT_TYPE
        return ArtifactObject(key=key, data=data, content_type=content_type)

    async def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted (every page is read)."""
        validate_prefix(prefix)
        client = await self._s3()
        keys: list[str] = []
        try:
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", ()))
        except (ClientError, BotoCoreError) as exc:
            raise _error("list", prefix, exc) from None
        return sorted(keys)

    async def delete(self, key: str) -> None:
        """Delete ``key`` (S3 answers the same whether it existed or not)."""
        validate_key(key)
        client = await self._s3()
        try:
            await client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _error("delete", key, exc) from None

    async def presigned_url(self, key: str, expires_in: int = 3600) -> str | None:
        """A GET URL valid for ``expires_in`` seconds."""
        validate_key(key)
        client = await self._s3()
        url: str = await client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url

    async def close(self) -> None:
        """Close the client."""
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()


def _error(operation: str, key: str, exc: ClientError | BotoCoreError) -> ArtifactError:
    reason = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
    return ArtifactError(f"S3 {operation} of {key!r} failed: {reason}")
