# Shortcuts for people who have make; dev.py is the real entry point (it needs only Python and pip).
.PHONY: run test bench lint reliability-long
run:
	python3 dev.py run
test:
	python3 dev.py test
bench:
	python3 dev.py bench
lint:
	.venv/bin/ruff check . && .venv/bin/mypy
# The reliability suite's fault and crash-loop tests at length (about 500 edits under faults, 50 SIGKILLs); CI runs
# the same tests short. Also three replicas under SIGKILL and SIGSTOP (with SYNCD_TEST_POSTGRES_URL set, else
# skipped). SYNCD_RELIABILITY_SEED=N replays a run (each test prints its seed).
reliability-long:
	SYNCD_RELIABILITY_LONG=1 .venv/bin/pytest -s -rxsX tests/reliability/test_faults.py tests/reliability/test_crash_loop.py \
		tests/reliability/test_replicas_chaos.py
