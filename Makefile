# Entry points; the scripts do the work (see README.md).
PY ?= .venv/bin/python

.PHONY: test bench bench-quick

test:
	bash scripts/test.sh

# speed benchmarks on the real servers (started if needed), then cluster and personalization quality
bench:
	$(PY) bench/speed.py
	$(PY) -m bench.scale  # the million-vector step (~35 min, ~5 GB of disk while it runs)
	$(PY) bench/cluster_eval.py
	$(PY) bench/personalization_eval.py
	$(PY) bench/styled_users_eval.py

bench-quick:
	$(PY) bench/speed.py --quick
