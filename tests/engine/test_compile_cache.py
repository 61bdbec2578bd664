"""emjax's persistent compilation cache directory stays usable by JAX's size-bounded (LRU) cache
when another environment, one without ``filelock`` and so without a size bound, wrote entries to it
without their access-time files (JAX then failed every later write with a warning)."""
import pytest

from emjax.engine import compile_cache

lru_cache = pytest.importorskip("jax._src.lru_cache")  # JAX's own cache class (needs filelock)


def test_entries_written_without_a_size_bound_are_dated_and_then_evicted(tmp_path):
    (tmp_path / "old-cache").write_bytes(b"x" * 10)        # as an unbounded process leaves it
    with pytest.raises(FileNotFoundError):                # JAX cannot evict it as it stands
        lru_cache.LRUCache(str(tmp_path), max_size=15).put("new", b"y" * 10)
    compile_cache._date_undated_entries(tmp_path)
    assert len((tmp_path / "old-atime").read_bytes()) == 8
    lru_cache.LRUCache(str(tmp_path), max_size=15).put("newer", b"z" * 10)
    assert not (tmp_path / "old-cache").exists() and (tmp_path / "newer-cache").exists()
