# The public interface of the project: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
WEBCHAT_VERSION := 4.18.1
WEBCHAT_JS := src/warmline/channels/widget/static/vendor/webchat.js

.PHONY: install demo test lint typecheck pytest bench bench-bot clean

install: $(VENV)/.installed $(WEBCHAT_JS) node/node_modules/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The official Web Chat bundle comes from the npm registry (`npm pack`, no CDN at run time).
$(WEBCHAT_JS):
	mkdir -p $(dir $@) var/npm
	cd var/npm && npm pack --silent botframework-webchat@$(WEBCHAT_VERSION) >/dev/null
	tar -xzf var/npm/botframework-webchat-$(WEBCHAT_VERSION).tgz -C var/npm package/dist/webchat.js
	mv var/npm/package/dist/webchat.js $@

# Node.js protocol clients used by the tests (botframework-directlinejs).
node/node_modules/.installed: node/package.json
	cd node && npm install --silent --no-audit --no-fund
	touch $@

demo: install
	$(BIN)/warmline demo --port $(PORT)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy src

pytest: install
	$(BIN)/pytest

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src
	$(BIN)/warmline bot validate src/warmline/demo_bot
	$(BIN)/warmline bot test src/warmline/demo_bot/tests/*.test.yaml
	$(BIN)/pytest

bench: install
	$(BIN)/python benchmarks/directline_roundtrip.py

# Bot turns against botbuilder-dialogs in one process (the `bench` extra holds the baseline).
bench-bot: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bot_turns.py

clean:
	rm -rf $(VENV) var node/node_modules $(WEBCHAT_JS)
