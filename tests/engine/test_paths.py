"""Writing a file whole or not at all (``paths.write_atomically``: checkpoints, the sweep journal, the clip cache)."""

import pytest

from minimodels.engine.paths import write_atomically


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_file(tmp_path):
    target = tmp_path / "journal.json"
    write_atomically(target, lambda name: open(name, "w").write("old"))

    def cut_short(name):
        open(name, "w").write("ha")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_atomically(target, cut_short)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["journal.json"]
    write_atomically(target, lambda name: open(name, "w").write("new"))
    assert target.read_text() == "new"


def test_each_process_writes_its_own_temporary_file(tmp_path, monkeypatch):
    seen = []
    for pid in (11, 12):  # two processes writing the same file at once never share a temporary file
        monkeypatch.setattr("os.getpid", lambda pid=pid: pid)
        write_atomically(tmp_path / "x.npy", lambda name: seen.append(name) or open(name, "w").write(""))
    assert len(set(seen)) == 2
