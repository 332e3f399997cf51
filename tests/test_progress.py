import io

from digitrec.progress import Progress, clock


def test_bar_counts_rate_and_time_left():
    bar = Progress(100, "predict")
    bar.done = 25
    assert bar.render(elapsed=5.0) == (
        "predict [#####...............] 25/100 images  5.0/s  ETA 0:15"
    )
    assert clock(75) == "1:15" and clock(3725) == "1:02:05"


def test_bar_redraws_in_place_and_clears_for_other_output():
    stream = io.StringIO()
    with Progress(3, enabled=True, stream=stream, interval=3600) as bar:
        bar.update()  # drawn at once
        bar.update()  # too soon to draw again
        bar.clear()
        stream.write("an error line\n")
        bar.update()  # the last one is always drawn
    text = stream.getvalue()
    assert text.count("/3 images") == 2 and "3/3 images" in text and text.endswith("\n")
    assert "\r" + " " * len("[##########..........]") in text
    assert text.split("\r")[-1].startswith("[####################] 3/3 images")


def test_disabled_bar_writes_nothing():
    stream = io.StringIO()
    with Progress(3, enabled=False, stream=stream) as bar:
        bar.update(3)
        bar.clear()
    assert stream.getvalue() == ""
