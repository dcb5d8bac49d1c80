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

.PHONY: help setup book student student-notebooks book-student test test-unit test-slow test-notebooks test-book check-pages execute reproduce reproduce-trained reproduce-early study-table clean

help:
	@echo "make book   - set up, build the HTML book into _build/html (offline, -W)"
	@echo "make student - the student edition: the chapters without solutions (_build/student/notebooks)"
	@echo "               and the book built from them (_build/student/html); book-student is the same"
	@echo "make test   - set up, run unit tests, nbval on the notebooks, the book build and the page check"
	@echo "make test-unit - the fast unit tests only (-m 'not slow'); make test-slow - the end-to-end ones"
	@echo "make reproduce-trained - the reproduction study (24 runs at 32 px, hours on 2 cores; resumable; JOBS=2: two at once)"
	@echo "make reproduce-early - the early-training study (16 runs of 600 x 16 images); make study-table"
	@echo "make reproduce - both, with the DAMSM and the evaluator trained from scratch first"

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
# The introduction's map of the package (csagan.plotting.PACKAGE_LAYERS; a test keeps it complete).
book/figures/package_layers.png: csagan/plotting.py | $(STAMP)
	$(PY) -c "from csagan.plotting import package_layers_diagram as d; d().savefig('$@', dpi=110)"

book: setup book/figures/package_layers.png
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

# ---------------------------------------------------------------- the reproduction study
# Two protocols (csagan.study.STUDY_PRESETS; `csagan config show-study --preset NAME`):
# * trained: 8 variants x 3 seeds at 32 px, learning rates x2, 3,000 steps x 24 images, scored at five budgets
#   (results in book/results, figures in book/results/figures) -- `make reproduce-trained`;
# * early: 8 variants x 2 seeds at 64 px, 600 steps x 16 images (book/results/early) --
#   `make reproduce-early`.
# Both use the DAMSM and the evaluator shipped in csagan/assets, which is how the book's results were
# made; `make reproduce` makes those two from scratch first (DAMSM ~30 min, evaluator ~13 min on 2
# cores) and then runs both studies into runs/reproduce/results. Every step resumes where a killed
# run stopped: the same command again continues. Measured run times: benchmarks/README.md.
# JOBS runs that many runs at once, one process each with cores/JOBS threads (`csagan study run --jobs`;
# 2 on a 2-core CPU gives 1.33x the images per second, benchmarks/README.md "side_by_side.py"); pause them
# all with `pkill -STOP -f "csagan study"`, resume with `pkill -CONT -f "csagan study"`.
JOBS ?= 1
REPRO := runs/reproduce
RESULTS := book/results
SHIPPED_DAMSM := csagan/assets/toybirds-csagan/damsm
SHIPPED_EVALUATOR := csagan/assets/evaluator_toybirds.pt
STUDY = $(BIN)/csagan study run --data $(DATA) --no-progress --jobs $(JOBS)
FIGURES = $(BIN)/csagan study figures --data $(DATA)

$(REPRO)/damsm/damsm.json: | setup
	$(BIN)/csagan pretrain-damsm --preset toybirds-cpu --data $(DATA) --out $(REPRO)/damsm --no-progress

$(REPRO)/evaluator.pt: | setup
	$(BIN)/csagan evaluator train --data $(DATA) --out $(REPRO)/evaluator.pt --random-birds 15000 --epochs 6 --quiet

reproduce: setup $(REPRO)/damsm/damsm.json $(REPRO)/evaluator.pt
	$(STUDY) --preset trained --runs $(REPRO)/trained --results $(REPRO)/results --damsm $(REPRO)/damsm --evaluator $(REPRO)/evaluator.pt
	$(FIGURES) --runs $(REPRO)/trained --out $(REPRO)/results/figures --results $(REPRO)/results
	$(STUDY) --preset early --runs $(REPRO)/early --results $(REPRO)/results/early --damsm $(REPRO)/damsm --evaluator $(REPRO)/evaluator.pt
	$(FIGURES) --runs $(REPRO)/early --out $(REPRO)/results/early/figures --results $(REPRO)/results/early
	$(BIN)/csagan study table --results $(REPRO)/results --results $(REPRO)/results/early --points

reproduce-trained: setup
	$(STUDY) --preset trained --runs runs/study-trained --results $(RESULTS) --damsm $(SHIPPED_DAMSM) --evaluator $(SHIPPED_EVALUATOR)
	$(FIGURES) --runs runs/study-trained --out $(RESULTS)/figures --results $(RESULTS)
	$(BIN)/csagan study table --results $(RESULTS) --points

reproduce-early: setup
	$(STUDY) --preset early --runs runs/study-early --results $(RESULTS)/early --damsm $(SHIPPED_DAMSM) --evaluator $(SHIPPED_EVALUATOR)
	$(FIGURES) --runs runs/study-early --out $(RESULTS)/early/figures --results $(RESULTS)/early
	$(BIN)/csagan study table --results $(RESULTS)/early

study-table: setup
	$(BIN)/csagan study table --results $(RESULTS) --results $(RESULTS)/early --points

clean:
	rm -rf _build .pytest_cache
