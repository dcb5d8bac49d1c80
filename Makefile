# csagan: the two commands of the README are `make book` and `make test`.
# Each does all of its own set-up on a fresh machine (Python 3.11+, pip, npm).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
DATA   := data/toybirds
MATHJAX_VERSION := 3.2.2
MATHJAX := book/_extra/_static/mathjax/tex-mml-chtml.js
STAMP  := $(VENV)/.installed-stamp
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Notebooks and tests find the dataset here.
export CSAGAN_DATA := $(abspath $(DATA))

.PHONY: help setup book student student-notebooks book-student test test-unit test-slow test-notebooks test-book check-pages execute reproduce reproduce-shipped study-table clean

help:
	@echo "make book   - set up, build the HTML book into _build/html (offline, -W)"
	@echo "make student - the student edition: the chapters without solutions (_build/student/notebooks)"
	@echo "               and the book built from them (_build/student/html); book-student is the same"
	@echo "make test   - set up, run unit tests, nbval on the notebooks, the book build and the page check"
	@echo "make test-unit - the fast unit tests only (-m 'not slow'); make test-slow - the end-to-end ones"
	@echo "make reproduce - the reproduction study from scratch on the CPU (hours; resumable)"

# ---------------------------------------------------------------- set-up
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e ".[book,test]"
	@touch $(STAMP)

$(MATHJAX):
	@command -v npm >/dev/null || { echo "npm is needed once to fetch MathJax (apt-get install npm)"; exit 1; }
	npm install --silent --no-audit --no-fund --prefix .cache/npm mathjax@$(MATHJAX_VERSION)
	rm -rf book/_extra/_static/mathjax
	mkdir -p book/_extra/_static
	cp -r .cache/npm/node_modules/mathjax/es5 book/_extra/_static/mathjax

$(DATA)/toybirds.json: | $(STAMP)
	$(BIN)/csagan data toybirds --out $(DATA)

setup: $(STAMP) $(MATHJAX) $(DATA)/toybirds.json

# ---------------------------------------------------------------- book
book: setup
	$(BIN)/jupyter-book build . -W --keep-going
	@echo "Book: file://$(abspath _build/html/index.html)"

# The student edition, ready to hand out: every chapter with its exercise solutions removed
# (_build/student/notebooks/*.ipynb; checker cells stay) and the HTML book built from those
# notebooks with sphinx-exercise's hide_solutions (_build/student/html). tools/student_edition.py
# says what counts as a solution; it never writes into notebooks/.
STUDENT := _build/student

student-notebooks: setup
	$(PY) tools/student_edition.py --out $(STUDENT) --notebooks-only

student: setup
	$(PY) tools/student_edition.py --out $(STUDENT)
	$(BIN)/jupyter-book build $(STUDENT)/book-src -W --keep-going
	rm -rf $(STUDENT)/html
	cp -r $(STUDENT)/book-src/_build/html $(STUDENT)/html
	$(PY) tools/student_edition.py --check-html $(STUDENT)/html
	@echo "Student notebooks: $(abspath $(STUDENT)/notebooks)"
	@echo "Student book: file://$(abspath $(STUDENT)/html/index.html)"

book-student: student

# ---------------------------------------------------------------- tests
# The fast lane (what to run while editing) and the slow end-to-end tests at smoke size;
# `make test` runs both.
test-unit: setup
	$(PY) -m pytest tests -q -m "not slow"

test-slow: setup
	$(PY) -m pytest tests -q -m slow

test-notebooks: setup
	CSAGAN_PROFILE=smoke $(PY) -m pytest --nbval --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks -q

test-book: setup
	rm -rf _build/html
	$(BIN)/jupyter-book build . -W --keep-going

check-pages: test-book
	$(PY) tools/check_pages.py _build/html

test: test-unit test-slow test-notebooks check-pages student
	@echo "make test: all checks passed"

# ---------------------------------------------------------------- notebooks
execute: setup
	@for nb in notebooks/*.ipynb; do \
	  echo "executing $$nb (book profile)"; \
	  CSAGAN_PROFILE=book $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=3600 "$$nb" || exit 1; \
	done

# ---------------------------------------------------------------- reproduction study (issue 7)
# Everything from scratch on the CPU: the DAMSM (~30 min on 2 cores), the ToyBirds evaluator
# (~13 min), then 8 variants x 2 seeds of 600 steps x 16 images each (csagan.study; ~5 min a run
# on 2 cores, ~80 min in all), then the figures. Every step resumes where a killed run stopped;
# `make reproduce` again continues. `make reproduce-shipped` runs the same study with the DAMSM
# and the evaluator shipped in csagan/assets (made by the two commands below): that is how the
# book's results were made.
REPRO := runs/reproduce
RESULTS := book/results
STUDY = $(BIN)/csagan study run --data $(DATA) --runs $(REPRO)/runs --results $(RESULTS) --no-progress
FIGURES = $(BIN)/csagan study figures --runs $(REPRO)/runs --out $(RESULTS)/figures --data $(DATA)

$(REPRO)/damsm/damsm.json: | setup
	$(BIN)/csagan pretrain-damsm --preset toybirds-cpu --data $(DATA) --out $(REPRO)/damsm --no-progress

$(REPRO)/evaluator.pt: | setup
	$(BIN)/csagan evaluator train --data $(DATA) --out $(REPRO)/evaluator.pt --random-birds 15000 --epochs 6 --quiet

SEEDS := 0,1

reproduce: setup $(REPRO)/damsm/damsm.json $(REPRO)/evaluator.pt
	$(STUDY) --seeds $(SEEDS) --damsm $(REPRO)/damsm --evaluator $(REPRO)/evaluator.pt
	$(FIGURES)
	$(BIN)/csagan study table --results $(RESULTS)

reproduce-shipped: setup
	$(STUDY) --seeds $(SEEDS) --damsm csagan/assets/toybirds-csagan/damsm --evaluator csagan/assets/evaluator_toybirds.pt
	$(FIGURES)
	$(BIN)/csagan study table --results $(RESULTS)

study-table: setup
	$(BIN)/csagan study table --results $(RESULTS)

clean:
	rm -rf _build .pytest_cache
