"""A real S3-protocol server for the tests: moto's ``ThreadedMotoServer`` on 127.0.0.1.

As s3fs's own tests do: the server runs in a thread of the test process for the whole
session, with fake credentials in the environment; each test gets a bucket of its own
(so no test sees another's objects) and the settings a program needs to reach it: the
fsspec configuration in this process, and environment variables for the programs the
tests start (``FSSPEC_S3_ENDPOINT_URL``, the credentials, the team secret).

tests/conftest.py loads this module as a plugin: `s3` and `moto_server` are fixtures everywhere.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any, Dict, Iterator

import pytest

SECRET = "team secret for the tests"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing-key",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class Bucket:
    """One test's bucket on the moto server."""

    def __init__(self, endpoint: str, name: str) -> None:
        import s3fs

        self.endpoint = endpoint
        self.name = name
        self.url = f"s3://{name}/cache"
        self.fs = s3fs.S3FileSystem(
            endpoint_url=endpoint, skip_instance_cache=True, use_listings_cache=False
        )
        self.fs.mkdir(name)

    @property
    def env(self) -> Dict[str, str]:
        """The environment of a program that uses this bucket as its cache."""
        return {
            **CREDENTIALS,
            "FSSPEC_S3_ENDPOINT_URL": self.endpoint,
            "CHECKPOINTING_SECRET": SECRET,
        }

    def objects(self, under: str = "cache/entries") -> Dict[str, bytes]:
        """{path: content} of the objects under ``under``."""
        found = self.fs.find(f"{self.name}/{under}")
        return {path: self.fs.cat_file(path) for path in found}

    def client(self) -> Any:
        """A plain botocore client (for what s3fs does not expose)."""
        from botocore.session import Session

        return Session().create_client("s3", endpoint_url=self.endpoint)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint URL of a moto S3 server running for the whole session."""
    from moto.server import ThreadedMotoServer

    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Bucket:
    """A fresh bucket, set as the fsspec S3 endpoint of this process, with the team
    secret set and the local tiers under the test's folder."""
    import fsspec.config

    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": moto_server})
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", moto_server)  # for programs it starts
    monkeypatch.setenv("CHECKPOINTING_SECRET", SECRET)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return Bucket(moto_server, f"test-{uuid.uuid4().hex[:12]}")
