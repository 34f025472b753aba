"""Both artifact backends behave the same: local folder and S3 (moto's real server)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from artifacts.factory import artifact_store_from_settings
from artifacts.local import LocalArtifactStore
from artifacts.s3 import S3ArtifactStore
from artifacts.store import ArtifactError, ArtifactNotFound, ArtifactStore
from core.settings import Settings
from tests.fixtures.s3 import S3_TEST_CREDENTIALS


def _s3(endpoint: str, bucket: str | None = None) -> S3ArtifactStore:
    return S3ArtifactStore(
        bucket or f"warren-test-{secrets.token_hex(4)}",
        endpoint_url=endpoint,
        **S3_TEST_CREDENTIALS,
    )


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: str
) -> AsyncIterator[ArtifactStore]:
    backend: ArtifactStore
    backend = LocalArtifactStore(tmp_path / "art") if request.param == "local" else _s3(s3_endpoint)
    yield backend
    await backend.close()


async def test_put_get_roundtrip_keeps_bytes_and_content_type(store: ArtifactStore) -> None:
    payload = secrets.token_bytes(70_000) + b"\0\xff"
    await store.put("runs/r1/completion.json", payload, "application/json")
    got = await store.get("runs/r1/completion.json")
    assert got.data == payload
    assert got.content_type == "application/json"
    assert got.key == "runs/r1/completion.json"


async def test_put_replaces_existing_value(store: ArtifactStore) -> None:
    await store.put("a/b.txt", b"one", "text/plain")
    await store.put("a/b.txt", b"two", "text/markdown")
    got = await store.get("a/b.txt")
    assert (got.data, got.content_type) == (b"two", "text/markdown")


async def test_list_by_prefix_is_sorted_and_string_prefix(store: ArtifactStore) -> None:
    for key in ("s/1/v/b.png", "s/1/v/a.png", "s/10/x", "s/2/y", "t/z"):
        await store.put(key, b"x")
    assert await store.list("s/1/") == ["s/1/v/a.png", "s/1/v/b.png"]
    assert await store.list("s/1") == ["s/1/v/a.png", "s/1/v/b.png", "s/10/x"]
    assert await store.list("") == ["s/1/v/a.png", "s/1/v/b.png", "s/10/x", "s/2/y", "t/z"]
    assert await store.list("nothing/") == []


async def test_delete_removes_and_missing_is_fine(store: ArtifactStore) -> None:
    await store.put("d/k", b"v")
    await store.delete("d/k")
    with pytest.raises(ArtifactNotFound):
        await store.get("d/k")
    assert await store.list("d/") == []
    await store.delete("d/k")  # again: not an error
    await store.delete("never/existed")


async def test_get_missing_raises_not_found(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound):
        await store.get("missing/key")


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../b", "/abs/key", "a//b", "a/./b", "", "a\\b", "a/\0b", "a/"]
)
async def test_unsafe_keys_are_refused(store: ArtifactStore, key: str) -> None:
    with pytest.raises(ArtifactError):
        await store.put(key, b"x")
    with pytest.raises(ArtifactError):
        await store.get(key)
    with pytest.raises(ArtifactError):
        await store.delete(key)


async def test_unsafe_prefixes_are_refused(store: ArtifactStore) -> None:
    for prefix in ("../", "a/../", "/etc"):
        with pytest.raises(ArtifactError):
            await store.list(prefix)


async def test_local_store_writes_nothing_outside_its_root(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    with pytest.raises(ArtifactError):
        await store.put("../outside", b"x")
    await store.put("inside/file", b"x")
    assert await asyncio.to_thread(os.listdir, tmp_path) == ["root"]
    assert await store.presigned_url("inside/file") is None


async def test_local_store_reports_key_clash(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    await store.put("a", b"file")
    with pytest.raises(ArtifactError, match="clashes"):
        await store.put("a/b", b"under a file")


async def test_s3_creates_missing_bucket_on_first_use(s3_endpoint: str) -> None:
    bucket = f"warren-new-{secrets.token_hex(4)}"
    first = _s3(s3_endpoint, bucket)
    await first.put("k", b"v")
    await first.close()
    second = _s3(s3_endpoint, bucket)  # bucket exists now: reused, not recreated
    assert (await second.get("k")).data == b"v"
    await second.close()


async def test_s3_presigned_url_downloads_the_object(s3_endpoint: str) -> None:
    store = _s3(s3_endpoint)
    await store.put("media/shot.png", b"\x89PNG...", "image/png")
    url = await store.presigned_url("media/shot.png", expires_in=60)
    assert url is not None and "X-Amz-Signature" in url
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert await response.read() == b"\x89PNG..."
    await store.close()


async def test_s3_list_reads_every_page(s3_endpoint: str) -> None:
    store = _s3(s3_endpoint)
    keys = [f"many/{i:04d}" for i in range(1005)]  # more than one 1000-key page
    gate = asyncio.Semaphore(16)

    async def put(key: str) -> None:
        async with gate:
            await store.put(key, b"")

    await asyncio.gather(*(put(key) for key in keys))
    assert await store.list("many/") == keys
    await store.close()


async def test_s3_errors_do_not_leak_the_secret_key() -> None:
    secret = "SUPERSECRETKEY-" + secrets.token_hex(8)
    store = S3ArtifactStore(
        "b", endpoint_url="http://127.0.0.1:9", access_key_id="id", secret_access_key=secret
    )
    with pytest.raises(ArtifactError) as info:
        await store.put("k", b"v")
    assert secret not in str(info.value)
    await store.close()


def test_factory_builds_the_configured_backend(tmp_path: Path, s3_endpoint: str) -> None:
    local = artifact_store_from_settings(Settings(secret_key="k" * 32, data_dir=str(tmp_path)))
    assert isinstance(local, LocalArtifactStore)
    assert local.root == tmp_path / "artifacts"
    s3 = artifact_store_from_settings(
        Settings(
            secret_key="k" * 32,
            data_dir=str(tmp_path),
            artifact_store="s3",
            s3_bucket="bkt",
            s3_endpoint_url=s3_endpoint,
            s3_region="eu-west-1",
        )
    )
    assert isinstance(s3, S3ArtifactStore)
    assert (s3.bucket, s3.endpoint_url, s3.region) == ("bkt", s3_endpoint, "eu-west-1")
