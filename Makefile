# Thin wrappers: the scripts are the source of truth (CI runs .ci/run -> scripts/test.sh).
.PHONY: help setup demo demo-stop test quick lint sanity build unit integration pytest faults molecule fleet

help:
	@echo "make setup       scripts/setup.sh (idempotent: venv, collections, system packages)"
	@echo "make demo        scripts/demo.sh (sandbox + preflight.yml + report)"
	@echo "make demo-stop   scripts/demo.sh stop"
	@echo "make test        scripts/test.sh (every stage: lint sanity build unit integration faults molecule fleet)"
	@echo "make quick       scripts/test.sh --quick (no sanity, faults, molecule, fleet)"
	@echo "make lint|sanity|build|unit|integration|pytest|faults|molecule|fleet   one stage"

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

demo-stop:
	bash scripts/demo.sh stop

test:
	bash scripts/test.sh

quick:
	bash scripts/test.sh --quick

lint sanity build unit integration pytest faults molecule fleet:
	bash scripts/test.sh $@
