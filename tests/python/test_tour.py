"""Runs the README's Python tour (examples/python/tour.py) and checks what it prints."""

import pathlib
import subprocess
import sys

TOUR = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python" / "tour.py"


def test_tour_runs_and_prints_what_the_readme_says():
    output = subprocess.run([sys.executable, str(TOUR)], check=True, capture_output=True, text=True).stdout
    lines = output.splitlines()
    assert lines[0] == "['cuda', 'host', 'opencl', 'sim']"
    assert lines[1] == "opencl:0 device (4, 0)"
    assert lines[2] == "8192"
    assert lines[3].startswith("InvalidArgument allocate: nbytes 0")
    assert lines[4] == "0"
    readme = (TOUR.parents[2] / "README.md").read_text()
    assert TOUR.read_text().split('"""', 2)[2].strip() in readme
