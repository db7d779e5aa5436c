"""How numbers read in the window."""

from desktop.format import clock, count, file_size, time_left


def test_counts_read_as_a_person_writes_them():
    assert [count(1, "photo"), count(0, "video"), count(2000, "file")] == [
        "1 photo",
        "0 videos",
        "2,000 files",
    ]


def test_moments_sizes_and_estimates():
    assert [clock(7), clock(102), clock(3723)] == ["0:07", "1:42", "1:02:03"]
    assert [file_size(512), file_size(2_500_000)] == ["512 bytes", "2.5 MB"]
    assert [time_left(40), time_left(200), time_left(3900)] == ["40 s", "3:20", "1 h 05 min"]
