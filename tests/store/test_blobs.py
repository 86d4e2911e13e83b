import os
import subprocess
import sys
import threading

import pytest
from failing_disks import file_size_limit

from mlo.errors import CorruptBlob, InvalidInput, NotFound
from mlo.store.addresses import hash_bytes
from mlo.store.blobs import LocalBlobStore, open_blob_store


@pytest.fixture
def blobs(tmp_path):
    return LocalBlobStore(tmp_path / "blobs")


def test_put_get_round_trip_and_digest_naming(blobs):
    digest = blobs.put_bytes(b"hello")
    assert digest == hash_bytes(b"hello") and digest.startswith("blake3:") and len(digest) <= 64
    h = digest.removeprefix("blake3:")
    assert blobs.path(digest) == blobs.root / "blake3" / h[:2] / h[2:]
    assert blobs.get_bytes(digest) == b"hello"


def test_same_content_is_stored_once(blobs, tmp_path):
    a = blobs.put_bytes(b"x" * 1000)
    f = tmp_path / "file.bin"
    f.write_bytes(b"x" * 1000)
    b = blobs.put_file(f)
    assert a == b
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 1
    assert not list((tmp_path / "blobs" / "tmp").iterdir())  # no temp file left behind


def test_corruption_is_detected_on_read(blobs):
    digest = blobs.put_bytes(b"precious")
    p = blobs.path(digest)
    os.chmod(p, 0o644)
    p.write_bytes(b"tampered")
    with pytest.raises(CorruptBlob, match="does not match its digest"):
        blobs.get_bytes(digest)
    with pytest.raises(CorruptBlob):
        blobs.copy_to(digest, blobs.root.parent / "out.bin")
    assert not (blobs.root.parent / "out.bin").exists()  # nothing half-written


def test_missing_and_malformed_digests(blobs):
    with pytest.raises(NotFound):
        blobs.get_bytes("0" * 64)
    with pytest.raises(InvalidInput):
        blobs.get_bytes("../../etc/passwd")


def test_copy_to_writes_verified_file(blobs, tmp_path):
    digest = blobs.put_bytes(b"data" * 100)
    out = blobs.copy_to(digest, tmp_path / "sub" / "x.bin")
    assert out.read_bytes() == b"data" * 100


def test_concurrent_writers_of_same_content(blobs):
    payload = os.urandom(1 << 20)
    errors = []

    def put():
        try:
            assert blobs.put_bytes(payload) == hash_bytes(payload)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert blobs.get_bytes(hash_bytes(payload)) == payload


def test_urls_choose_the_store(tmp_path):
    assert open_blob_store(f"file://{tmp_path}").root == tmp_path.resolve()
    with pytest.raises(InvalidInput, match="not a known storage"):
        open_blob_store("nosuchscheme://bucket/prefix", tmp_path / "cache")


def test_a_background_writer_writes_and_hashes_the_same_bytes_in_the_same_order(blobs):
    """Pieces are written and hashed on two threads of their own; small pieces in a buffer the producer reuses
    are copied first, so the blob holds exactly what was handed over, in order."""
    rng = __import__("random").Random(4)
    pieces = [os.urandom(rng.choice([10, 4096, 70_000, 1 << 20, 3 << 20])) for _ in range(60)]
    reused = bytearray(70_000)
    with blobs.writer(background=True) as w:
        for piece in pieces:
            if len(piece) == 70_000:  # a producer's own buffer, overwritten right after the call
                reused[:] = piece
                assert w.write(reused) == len(piece)
                reused[:] = b"\0" * len(reused)
            else:
                assert w.write(piece) == len(piece)
        assert w.tell() == sum(map(len, pieces))
    data = b"".join(pieces)
    assert w.size == len(data) and blobs.get_bytes(w.digest) == data
    assert w.digest == blobs.put_bytes(data)  # the same name as bytes stored at once


WRITE_PAST_LIMIT = """
import sys
from mlo.errors import StoreError
from mlo.store.blobs import LocalBlobStore

store = LocalBlobStore(sys.argv[1])
written = 0
try:
    with store.writer(background=True) as w:
        for _ in range(64):  # 64 MB against a 4 MB file size limit
            w.write(b"x" * (1 << 20))
            written += 1
except StoreError as exc:
    print(written, exc.kind, "|", exc)
"""


def test_a_write_that_fails_behind_the_producer_is_raised_to_it_and_stores_nothing(tmp_path):
    """A real failing write (a file size limit) on the writing thread reaches the producer as the store's
    one-line error, at one of its next writes, and leaves no blob or temp file."""
    out = subprocess.run(
        [sys.executable, "-c", WRITE_PAST_LIMIT, str(tmp_path / "blobs")],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=file_size_limit(4 << 20),
        check=True,
    )
    written, rest = out.stdout.split(" ", 1)
    assert rest.startswith("full |") and "file size limit" in rest, out.stdout + out.stderr
    assert int(written) < 64  # the producer was stopped, not left to write everything first
    store = LocalBlobStore(tmp_path / "blobs")
    assert not list(store.iter_blobs()) and not list((store.root / "tmp").iterdir())
