"""Progress bars: log records written while a bar is shown come out on lines of their own, not glued
to the bar (tqdm's logging redirect)."""

import re
import subprocess
import sys

SCRIPT = """
import logging, time
from imgsearch.progress import progress_bar
logging.basicConfig(level=logging.INFO)
with progress_bar(3, "indexed", "img", mininterval=0) as bar:
    bar.update(1)
    logging.getLogger("opensearch").warning("GET /x/_refresh [status:404]")
    bar.update(2)
print("done")
"""


def test_log_lines_do_not_break_the_bar():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    segments = [s.strip() for s in re.split(r"[\r\n]", proc.stderr) if s.strip()]
    assert "WARNING:opensearch:GET /x/_refresh [status:404]" in segments, segments
    bars = [s for s in segments if s.startswith("indexed:")]
    assert bars and "3/3" in bars[-1]
    assert proc.stdout == "done\n"
