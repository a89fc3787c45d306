# Shopkeeper: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-dev

.PHONY: demo test lint install lock evaluate evaluate-variants bench-collaborative bench-seeds bench-large bench bench-ingest \
        bench-serve bench-offers \
        bench-subprofiles bench-scale bench-quick clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]' -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

## Re-resolve the newest versions pyproject.toml allows into constraints.txt (then run make test)
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q -e '.[dev]'
	{ sed -n '/^#/p' constraints.txt; .lock-venv/bin/pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .lock-venv

## Run the demo: SQLite in instance/, the bundled Online Retail sample, http://127.0.0.1:5000/demo/
## (another port: make demo PORT=5055)
PORT ?= 5000
demo: $(STAMP)
	$(BIN)/shopkeeper demo --port $(PORT)

## Run the whole test suite (set SHOPKEEPER_TEST_POSTGRES_URL to add PostgreSQL; .ci/run does)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

## Offline evaluation on ../shared/data (results table in bench/README.md)
evaluate: $(STAMP)
	$(BIN)/python bench/evaluate_all.py

## The same CLI on reshaped data: customer-day baskets, short histories, temporal split
evaluate-variants: $(STAMP)
	$(BIN)/python bench/variants.py

## EASE against implicit ALS as the collaborative (new-item) model (table in bench/README.md)
bench-collaborative: $(STAMP)
	$(BIN)/python bench/collaborative.py

## The shopkeeper model refit with five seeds on the datasets nearest their target
bench-seeds: $(STAMP)
	$(BIN)/python bench/seeds.py instacart-sample dunnhumby-complete-journey

## The evaluate CLI on Complete Journey copied 1x and 4x and Instacart 1x and 40x: time and peak memory
bench-large: $(STAMP)
	$(BIN)/python bench/large.py --copies 1 4
	$(BIN)/python bench/large.py --dataset instacart-sample --copies 1 40

## Webhook ingestion throughput against a throwaway PostgreSQL
bench-ingest: $(STAMP)
	bash -c 'source .ci/postgres.sh start && trap ".ci/postgres.sh stop" EXIT && \
	  $(BIN)/python bench/ingest.py --database-url "$$SHOPKEEPER_TEST_POSTGRES_URL"'

## Recommendation endpoint throughput and latency (full Online Retail) on a throwaway PostgreSQL
bench-serve: $(STAMP)
	bash -c 'source .ci/postgres.sh start && trap ".ci/postgres.sh stop" EXIT && \
	  $(BIN)/python bench/serve.py --database-url "$$SHOPKEEPER_TEST_POSTGRES_URL"'

## Cart-offer targeting vs "everyone" and random on Complete Journey coupons
bench-offers: $(STAMP)
	$(BIN)/python bench/offers.py

## Sub-profile detection and recovery on grafted shoppers
bench-subprofiles: $(STAMP)
	$(BIN)/python bench/subprofiles.py

## Several shops, web + inbox workers under concurrent traffic
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py

## Every benchmark, one summary table (about 10 minutes on a quiet 2-core machine)
bench: $(STAMP)
	$(BIN)/python bench/run_all.py

bench-quick: $(STAMP)
	$(BIN)/python bench/run_all.py --quick

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache *.egg-info
