# Thin aliases for people who have make; the scripts are the real entry points (see README).
.PHONY: setup build test demo serve bench

setup:
	bash scripts/setup.sh

build:
	node scripts/build.mjs

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

serve:
	cargo run -q -p wharf-server -- --www www --pkg pkg

bench:
	node bench/run.mjs

# The chaos suite (tests/chaos/run.mjs): a long run over many seeds, e.g. make chaos SEEDS=1..50 OPS=300
SEEDS ?= 1..20
OPS ?= 300
.PHONY: chaos
chaos:
	node tests/chaos/run.mjs --seeds $(SEEDS) --ops $(OPS)

# The deterministic simulation (server/tests/simulation/): a long run, optimized, e.g.
# make simulate SIM_SEEDS=1..20000. One seed with its trace:
# WHARF_SIM_SEEDS=1234 WHARF_SIM_TRACE=1 cargo test -p wharf-server --test simulation -- --nocapture
SIM_SEEDS ?= 1..5000
.PHONY: simulate
simulate:
	WHARF_SIM_SEEDS=$(SIM_SEEDS) cargo test --profile server -p wharf-server --test simulation -- --nocapture
