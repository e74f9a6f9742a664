# Shortcuts for people who have make; dev.py is the real entry point (it needs only Python and pip).
.PHONY: run test bench lint
run:
	python3 dev.py run
test:
	python3 dev.py test
bench:
	python3 dev.py bench
lint:
	.venv/bin/ruff check . && .venv/bin/mypy
